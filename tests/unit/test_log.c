/*
 * Host tests of the log rate limiter (hv/log.c): a guest that provokes the same warning in
 * a loop gets LOG_RL_BURST lines per window on the serial port and a count of the rest,
 * never one line per exit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include <hw.h>
#include <tessel/config.h>
#include "drivers/uart.h"
#include "hv/log.h"

static unsigned count_lines(const char *text, const char *needle)
{
	unsigned n = 0;
	for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void guest_caused_warning(unsigned i)
{
	log_warn_rl("guest warning %u", i);
}

static void test_flood_is_limited(void **state)
{
	(void)state;
	fake_reset();
	fake_io_output_clear();
	log_init(UART_COM1, CFG_LOG_DEBUG);
	fake_tsc_set(1000);
	for (unsigned i = 0; i < 1000; i++)
		guest_caused_warning(i);
	const char *out = fake_io_output();
	assert_int_equal(count_lines(out, "guest warning"), LOG_RL_BURST);
	assert_null(strstr(out, "suppressed"));

	/* The next window prints again, first the count of what was held back. */
	fake_io_output_clear();
	fake_tsc_set(1000 + LOG_RL_WINDOW_TSC + 5);
	guest_caused_warning(1000);
	out = fake_io_output();
	assert_non_null(strstr(out, "(990 similar lines suppressed)"));
	assert_non_null(strstr(out, "guest warning 1000"));
	assert_true(strstr(out, "suppressed") < strstr(out, "guest warning 1000"));
}

static void test_sites_are_independent(void **state)
{
	(void)state;
	fake_reset();
	fake_io_output_clear();
	log_init(UART_COM1, CFG_LOG_DEBUG);
	fake_tsc_set(1ULL << 40);
	for (unsigned i = 0; i < 100; i++) {
		log_warn_rl("site A %u", i);
		log_warn_rl("site B %u", i);
	}
	const char *out = fake_io_output();
	assert_int_equal(count_lines(out, "site A"), LOG_RL_BURST);
	assert_int_equal(count_lines(out, "site B"), LOG_RL_BURST);
}

static void test_disabled_level_costs_nothing(void **state)
{
	(void)state;
	fake_reset();
	fake_io_output_clear();
	log_init(UART_COM1, CFG_LOG_WARN);
	fake_tsc_set(1ULL << 41);
	for (unsigned i = 0; i < 100; i++)
		log_debug_rl("debug %u", i);
	log_init(UART_COM1, CFG_LOG_DEBUG);
	log_warn_rl("after");
	const char *out = fake_io_output();
	assert_null(strstr(out, "debug"));
	assert_null(strstr(out, "suppressed")); /* filtered lines are not "suppressed" ones */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flood_is_limited),
		cmocka_unit_test(test_sites_are_independent),
		cmocka_unit_test(test_disabled_level_costs_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
