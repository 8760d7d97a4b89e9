/*
 * Configuration parsing for the loader: tessel.cfg text and UEFI shell arguments into a
 * struct tessel_config, its defaults, and its one-line rendering (docs/CONFIG.md).
 *
 * Everything here is pure and freestanding (no UEFI, no libc calls): the same file is
 * linked into the GNU-EFI loader and into the host unit test. Both parsers work on a copy
 * of the caller's struct and commit it only when the whole input was accepted, so on
 * error the caller's configuration is untouched and err holds a single-line message.
 */
#include "config.h"

#include <tessel/types.h>

/* ---- the keys ---- */

enum config_kind { CONFIG_KIND_PATH, CONFIG_KIND_ENUM, CONFIG_KIND_MIB };

struct config_key {
	const char *name;
	enum config_kind kind;
	size_t offset;             /* of the u32 field (enum and MiB kinds) */
	const char *const *values; /* enum kind: names indexed by the enum value */
	u32 nvalues;
};

static const char *const config_spp_names[] = { "auto", "hw", "sw", "off" };
static const char *const config_log_names[] = { "error", "warn", "info", "debug" };
static const char *const config_no_vmx_names[] = { "continue", "stop" };
static const char *const config_sppt_names[] = { "eager", "lazy" };
static const char *const config_check_names[] = { "off", "entry" };
static const char *const config_iommu_names[] = { "auto", "on", "off" };
static const char *const config_ept_bbm_names[] = { "auto", "on", "off" };

BUILD_BUG_ON(ARRAY_SIZE(config_spp_names) != CFG_SPP_OFF + 1);
BUILD_BUG_ON(ARRAY_SIZE(config_log_names) != CFG_LOG_DEBUG + 1);
BUILD_BUG_ON(ARRAY_SIZE(config_no_vmx_names) != CFG_NO_VMX_STOP + 1);
BUILD_BUG_ON(ARRAY_SIZE(config_sppt_names) != CFG_SPPT_LAZY + 1);
BUILD_BUG_ON(ARRAY_SIZE(config_check_names) != CFG_CHECK_ENTRY + 1);
BUILD_BUG_ON(ARRAY_SIZE(config_iommu_names) != CFG_IOMMU_OFF + 1);
BUILD_BUG_ON(ARRAY_SIZE(config_ept_bbm_names) != CFG_EPT_BBM_OFF + 1);
BUILD_BUG_ON(CONFIG_VALUE_MAX >= CFG_NEXT_MAX);

#define CONFIG_ENUM_KEY(n, field, names) \
	{ n, CONFIG_KIND_ENUM, offsetof(struct tessel_config, field), names, ARRAY_SIZE(names) }

/* Table order is the order config_format prints in. */
static const struct config_key config_keys[] = {
	{ "next", CONFIG_KIND_PATH, 0, NULL, 0 },
	CONFIG_ENUM_KEY("spp", spp, config_spp_names),
	CONFIG_ENUM_KEY("log", log_level, config_log_names),
	{ "heap", CONFIG_KIND_MIB, offsetof(struct tessel_config, heap_mib), NULL, 0 },
	CONFIG_ENUM_KEY("no_vmx", no_vmx, config_no_vmx_names),
	CONFIG_ENUM_KEY("sppt", sppt, config_sppt_names),
	CONFIG_ENUM_KEY("check", check, config_check_names),
	CONFIG_ENUM_KEY("iommu", iommu, config_iommu_names),
	CONFIG_ENUM_KEY("ept_bbm", ept_bbm, config_ept_bbm_names),
};
#define CONFIG_NKEYS ARRAY_SIZE(config_keys)

#define CONFIG_TOKEN_SHOW 48 /* characters of an offending token quoted in an error message */

static u32 *config_field(struct tessel_config *cfg, const struct config_key *k)
{
	return (u32 *)((char *)cfg + k->offset);
}

static u32 config_field_get(const struct tessel_config *cfg, const struct config_key *k)
{
	return *(const u32 *)((const char *)cfg + k->offset);
}

/* ---- small freestanding helpers ---- */

static bool config_is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool config_is_control(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static size_t config_cstr_len(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n])
		n++;
	return n;
}

/* Does the counted string s[0..n) equal the NUL-terminated string z? */
static bool config_equals(const char *s, size_t n, const char *z)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (z[i] != s[i] || z[i] == '\0')
			return false;
	return z[n] == '\0';
}

/* A counted slice of the input. */
struct config_span {
	const char *s;
	size_t n;
};

static struct config_span config_trim(struct config_span t)
{
	while (t.n && config_is_space(t.s[0])) {
		t.s++;
		t.n--;
	}
	while (t.n && config_is_space(t.s[t.n - 1]))
		t.n--;
	return t;
}

/* ---- bounded output (error messages and config_format) ---- */

struct config_out {
	char *buf;
	size_t cap;
	size_t len;
};

static struct config_out config_out_init(char *buf, size_t cap)
{
	struct config_out o = { buf, buf ? cap : 0, 0 };
	if (o.cap)
		o.buf[0] = '\0';
	return o;
}

static void config_out_char(struct config_out *o, char c)
{
	if (o->len + 1 < o->cap) {
		o->buf[o->len++] = c;
		o->buf[o->len] = '\0';
	}
}

static void config_out_str(struct config_out *o, const char *s)
{
	while (*s)
		config_out_char(o, *s++);
}

static void config_out_u64(struct config_out *o, u64 v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		config_out_char(o, tmp[--n]);
}

static void config_out_hex2(struct config_out *o, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	config_out_char(o, hex[c >> 4]);
	config_out_char(o, hex[c & 15]);
}

/*
 * Copy a token from the input: printable ASCII as is, other bytes as \xNN. At most `max`
 * characters are written; a token cut short ends in "...".
 */
static void config_out_token(struct config_out *o, struct config_span t, size_t max)
{
	size_t i, used = 0;
	for (i = 0; i < t.n; i++) {
		unsigned char c = (unsigned char)t.s[i];
		bool plain = c >= 0x20 && c < 0x7f;
		if (used + (plain ? 1 : 4) > max) {
			config_out_str(o, "...");
			return;
		}
		if (plain) {
			config_out_char(o, (char)c);
		} else {
			config_out_str(o, "\\x");
			config_out_hex2(o, c);
		}
		used += plain ? 1 : 4;
	}
}

/* "auto, hw, sw or off" */
static void config_out_choices(struct config_out *o, const struct config_key *k)
{
	u32 i;
	for (i = 0; i < k->nvalues; i++) {
		if (i)
			config_out_str(o, i + 1 == k->nvalues ? " or " : ", ");
		config_out_str(o, k->values[i]);
	}
}

/* ---- the parser proper, shared by file and command line ---- */

struct config_ctx {
	struct tessel_config cfg; /* the working copy, committed on success */
	u32 seen[CONFIG_NKEYS];   /* line (or argument) where each key was set; 0 = not yet */
	const char *source;       /* file name, or NULL for the command line */
	u32 where;                /* current line or argument number, from 1 */
	char *err;
	size_t errlen;
};

/* Start an error message with its location; the caller appends the rest. */
static struct config_out config_err(struct config_ctx *c)
{
	struct config_out o = config_out_init(c->err, c->errlen);
	if (c->source) {
		config_out_str(&o, c->source);
		config_out_char(&o, ':');
		config_out_u64(&o, c->where);
		config_out_str(&o, ": ");
	} else {
		config_out_str(&o, "command line: argument ");
		config_out_u64(&o, c->where);
		config_out_str(&o, ": ");
	}
	return o;
}

/* Start an error message about a known key: "<location><key>: ". */
static struct config_out config_err_key(struct config_ctx *c, const struct config_key *k)
{
	struct config_out o = config_err(c);
	config_out_str(&o, k->name);
	config_out_str(&o, ": ");
	return o;
}

static int config_err_invalid(struct config_ctx *c, const struct config_key *k, struct config_span v)
{
	struct config_out o = config_err_key(c, k);
	config_out_str(&o, "invalid value '");
	config_out_token(&o, v, CONFIG_TOKEN_SHOW);
	config_out_str(&o, "' (expected ");
	if (k->kind == CONFIG_KIND_ENUM) {
		config_out_choices(&o, k);
	} else {
		config_out_str(&o, "a decimal number of MiB, ");
		config_out_u64(&o, CFG_HEAP_MIN_MIB);
		config_out_str(&o, "..");
		config_out_u64(&o, CFG_HEAP_MAX_MIB);
	}
	config_out_char(&o, ')');
	return -EINVAL;
}

/* next: printable ASCII without spaces, '/' becomes '\', no ".." component. */
static int config_set_path(struct config_ctx *c, const struct config_key *k, struct config_span v)
{
	char path[CFG_NEXT_MAX];
	size_t i, comp = 0;

	for (i = 0; i < v.n; i++) {
		unsigned char ch = (unsigned char)v.s[i];
		if (ch <= 0x20 || ch >= 0x7f) {
			struct config_out o = config_err_key(c, k);
			if (ch == ' ' || ch == '\t') {
				config_out_str(&o, "path must not contain spaces ('");
			} else {
				config_out_str(&o, "invalid character \\x");
				config_out_hex2(&o, ch);
				config_out_str(&o, " in path ('");
			}
			config_out_token(&o, v, CONFIG_TOKEN_SHOW);
			config_out_str(&o, "')");
			return -EINVAL;
		}
		path[i] = ch == '/' ? '\\' : (char)ch;
	}
	path[v.n] = '\0';

	/* Components are separated by '\'; reject any that is exactly "..". */
	for (i = 0; i <= v.n; i++) {
		if (path[i] != '\\' && path[i] != '\0')
			continue;
		if (i - comp == 2 && path[comp] == '.' && path[comp + 1] == '.') {
			struct config_out o = config_err_key(c, k);
			config_out_str(&o, "'..' is not allowed in a path ('");
			config_out_token(&o, v, CONFIG_TOKEN_SHOW);
			config_out_str(&o, "')");
			return -EINVAL;
		}
		comp = i + 1;
	}

	for (i = 0; i <= v.n; i++)
		c->cfg.next[i] = path[i];
	return 0;
}

static int config_set_enum(struct config_ctx *c, const struct config_key *k, struct config_span v)
{
	u32 i;
	for (i = 0; i < k->nvalues; i++) {
		if (config_equals(v.s, v.n, k->values[i])) {
			*config_field(&c->cfg, k) = i;
			return 0;
		}
	}
	return config_err_invalid(c, k, v);
}

/* heap: plain decimal digits, no sign, no suffix; range checked without overflowing. */
static int config_set_mib(struct config_ctx *c, const struct config_key *k, struct config_span v)
{
	u64 mib = 0;
	bool big = false;
	size_t i;

	for (i = 0; i < v.n; i++) {
		if (v.s[i] < '0' || v.s[i] > '9')
			return config_err_invalid(c, k, v);
		mib = mib * 10 + (u64)(v.s[i] - '0');
		if (mib > CFG_HEAP_MAX_MIB) {
			big = true;
			mib = CFG_HEAP_MAX_MIB + 1; /* saturate: keeps the product small */
		}
	}
	if (big || mib < CFG_HEAP_MIN_MIB) {
		struct config_out o = config_err_key(c, k);
		config_out_char(&o, '\'');
		config_out_token(&o, v, CONFIG_TOKEN_SHOW);
		config_out_str(&o, "' is out of range (expected ");
		config_out_u64(&o, CFG_HEAP_MIN_MIB);
		config_out_str(&o, "..");
		config_out_u64(&o, CFG_HEAP_MAX_MIB);
		config_out_str(&o, " MiB)");
		return -EINVAL;
	}
	*config_field(&c->cfg, k) = (u32)mib;
	return 0;
}

/*
 * One line of the file or one argument: line end removed, length already checked against
 * CONFIG_LINE_MAX. `comments` enables '#' comments (the file only).
 */
static int config_line(struct config_ctx *c, struct config_span t, bool comments)
{
	const struct config_key *k = NULL;
	struct config_span key, val;
	size_t i, eq;

	for (i = 0; i < t.n; i++) {
		unsigned char ch = (unsigned char)t.s[i];
		if (config_is_control(ch)) {
			struct config_out o = config_err(c);
			config_out_str(&o, "invalid control character \\x");
			config_out_hex2(&o, ch);
			config_out_str(&o, " at column ");
			config_out_u64(&o, i + 1);
			return -EINVAL;
		}
	}
	if (comments) {
		for (i = 0; i < t.n; i++) {
			if (t.s[i] == '#' && (i == 0 || config_is_space(t.s[i - 1]))) {
				t.n = i;
				break;
			}
		}
	}
	t = config_trim(t);
	if (!t.n) {
		if (comments)
			return 0; /* blank or comment-only line */
		struct config_out o = config_err(c);
		config_out_str(&o, "empty argument");
		return -EINVAL;
	}

	for (eq = 0; eq < t.n && t.s[eq] != '='; eq++)
		;
	if (eq == t.n) {
		struct config_out o = config_err(c);
		config_out_str(&o, "missing '=' in '");
		config_out_token(&o, t, CONFIG_TOKEN_SHOW);
		config_out_char(&o, '\'');
		return -EINVAL;
	}
	key = config_trim((struct config_span){ t.s, eq });
	val = config_trim((struct config_span){ t.s + eq + 1, t.n - eq - 1 });
	if (!key.n) {
		struct config_out o = config_err(c);
		config_out_str(&o, "empty key in '");
		config_out_token(&o, t, CONFIG_TOKEN_SHOW);
		config_out_char(&o, '\'');
		return -EINVAL;
	}

	for (i = 0; i < CONFIG_NKEYS; i++)
		if (config_equals(key.s, key.n, config_keys[i].name))
			k = &config_keys[i];
	if (!k) {
		struct config_out o = config_err(c);
		config_out_token(&o, key, CONFIG_TOKEN_SHOW);
		config_out_str(&o, ": unknown key");
		return -EINVAL;
	}
	i = (size_t)(k - config_keys);
	if (c->seen[i]) {
		struct config_out o = config_err_key(c, k);
		config_out_str(&o, c->source ? "duplicate key (first set on line " :
					       "duplicate key (first set in argument ");
		config_out_u64(&o, c->seen[i]);
		config_out_char(&o, ')');
		return -EINVAL;
	}
	c->seen[i] = c->where;

	if (!val.n) {
		if (k->kind == CONFIG_KIND_PATH) {
			c->cfg.next[0] = '\0'; /* "next=": return to firmware */
			return 0;
		}
		struct config_out o = config_err_key(c, k);
		config_out_str(&o, "empty value");
		return -EINVAL;
	}
	if (val.n > CONFIG_VALUE_MAX) {
		struct config_out o = config_err_key(c, k);
		config_out_str(&o, "value too long (");
		config_out_u64(&o, val.n);
		config_out_str(&o, " bytes, maximum ");
		config_out_u64(&o, CONFIG_VALUE_MAX);
		config_out_char(&o, ')');
		return -EINVAL;
	}
	switch (k->kind) {
	case CONFIG_KIND_PATH:
		return config_set_path(c, k, val);
	case CONFIG_KIND_ENUM:
		return config_set_enum(c, k, val);
	case CONFIG_KIND_MIB:
		return config_set_mib(c, k, val);
	}
	return -EINVAL;
}

static void config_ctx_init(struct config_ctx *c, const struct tessel_config *cfg, const char *source,
			    char *err, size_t errlen)
{
	size_t i;
	c->cfg = *cfg;
	for (i = 0; i < CONFIG_NKEYS; i++)
		c->seen[i] = 0;
	c->source = source;
	c->where = 0;
	c->err = err;
	c->errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
}

/* ---- public API ---- */

void config_defaults(struct tessel_config *cfg)
{
	size_t i;
	for (i = 0; i < CFG_NEXT_MAX; i++)
		cfg->next[i] = '\0';
	cfg->spp = CFG_SPP_AUTO;
	cfg->log_level = CFG_LOG_INFO;
	cfg->heap_mib = CFG_HEAP_DEFAULT_MIB;
	cfg->no_vmx = CFG_NO_VMX_CONTINUE;
	cfg->sppt = CFG_SPPT_EAGER;
	cfg->check = CFG_CHECK_OFF;
	cfg->ept_bbm = CFG_EPT_BBM_AUTO;
	cfg->iommu = CFG_IOMMU_AUTO;
	cfg->pad2 = 0;
}

int config_parse_file(struct tessel_config *cfg, const char *text, size_t len, const char *source,
		      char *err, size_t errlen)
{
	struct config_ctx c;
	size_t pos = 0;

	config_ctx_init(&c, cfg, source ? source : "tessel.cfg", err, errlen);
	if (!text && len) {
		struct config_out o = config_out_init(err, errlen);
		config_out_str(&o, c.source);
		config_out_str(&o, ": no text");
		return -EINVAL;
	}
	if (len >= 3 && (unsigned char)text[0] == 0xef && (unsigned char)text[1] == 0xbb &&
	    (unsigned char)text[2] == 0xbf)
		pos = 3; /* UTF-8 byte-order mark */

	while (pos < len) {
		size_t end = pos;
		struct config_span line;
		int rc;

		while (end < len && text[end] != '\n')
			end++;
		line = (struct config_span){ text + pos, end - pos };
		if (line.n && line.s[line.n - 1] == '\r')
			line.n--; /* CRLF */
		if (c.where < UINT32_MAX)
			c.where++;
		if (line.n > CONFIG_LINE_MAX) {
			struct config_out o = config_err(&c);
			config_out_str(&o, "line too long (");
			config_out_u64(&o, line.n);
			config_out_str(&o, " bytes, maximum ");
			config_out_u64(&o, CONFIG_LINE_MAX);
			config_out_char(&o, ')');
			return -EINVAL;
		}
		rc = config_line(&c, line, true);
		if (rc)
			return rc;
		pos = end < len ? end + 1 : len;
	}
	*cfg = c.cfg;
	return 0;
}

int config_parse_args(struct tessel_config *cfg, int argc, const char *const argv[], char *err,
		      size_t errlen)
{
	struct config_ctx c;
	int i;

	config_ctx_init(&c, cfg, NULL, err, errlen);
	for (i = 0; i < argc; i++) {
		const char *a = argv ? argv[i] : NULL;
		struct config_span t;
		int rc;

		c.where = (u32)i + 1;
		if (!a) {
			struct config_out o = config_err(&c);
			config_out_str(&o, "missing argument");
			return -EINVAL;
		}
		/* Measure one past the limit so an overlong argument is reported, not read whole. */
		t = (struct config_span){ a, config_cstr_len(a, CONFIG_LINE_MAX + 1) };
		if (t.n > CONFIG_LINE_MAX) {
			struct config_out o = config_err(&c);
			config_out_str(&o, "argument too long (more than ");
			config_out_u64(&o, CONFIG_LINE_MAX);
			config_out_str(&o, " bytes)");
			return -EINVAL;
		}
		rc = config_line(&c, t, false);
		if (rc)
			return rc;
	}
	*cfg = c.cfg;
	return 0;
}

void config_format(const struct tessel_config *cfg, char *buf, size_t len)
{
	struct config_out o = config_out_init(buf, len);
	size_t i;

	for (i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		u32 v;

		if (i)
			config_out_char(&o, ' ');
		config_out_str(&o, k->name);
		config_out_char(&o, '=');
		switch (k->kind) {
		case CONFIG_KIND_PATH:
			config_out_token(&o,
					 (struct config_span){ cfg->next, config_cstr_len(cfg->next, CFG_NEXT_MAX) },
					 CFG_NEXT_MAX);
			break;
		case CONFIG_KIND_ENUM:
			v = config_field_get(cfg, k);
			config_out_str(&o, v < k->nvalues ? k->values[v] : "?");
			break;
		case CONFIG_KIND_MIB:
			config_out_u64(&o, config_field_get(cfg, k));
			break;
		}
	}
}
