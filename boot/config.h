/*
 * The loader's configuration parser: tessel.cfg text and UEFI shell arguments into a
 * struct tessel_config (include/tessel/config.h). Pure and freestanding: no UEFI and no
 * libc calls, so the same code runs in the loader and in the host unit test. The syntax,
 * the keys and every error message are described in docs/CONFIG.md.
 */
#ifndef BOOT_CONFIG_H
#define BOOT_CONFIG_H

#include <tessel/config.h>

#define CONFIG_LINE_MAX 512  /* longest accepted line or argument, in bytes, without its line end */
#define CONFIG_VALUE_MAX 255 /* longest accepted value (next's path is the only long one) */
#define CONFIG_ERR_MAX 256   /* holds any whole error message when the source name is <= 100 bytes */
#define CONFIG_FORMAT_MAX 384 /* a buffer this large always holds config_format's line */

/* Fill *cfg with the defaults: next="" spp=auto log=info heap=32 no_vmx=continue sppt=eager iommu=auto ept_bbm=auto. */
void config_defaults(struct tessel_config *cfg);

/*
 * Parse the text of a configuration file (len bytes, need not be NUL-terminated) on top
 * of *cfg. `source` names the file in error messages (e.g. "\\EFI\\BOOT\\tessel.cfg").
 * Returns 0 on success. On error returns -EINVAL, writes a one-line NUL-terminated
 * message "<source>:<line>: ..." to err (truncated to errlen; err may be NULL when
 * errlen is 0) and leaves *cfg exactly as it was.
 */
int config_parse_file(struct tessel_config *cfg, const char *text, size_t len, const char *source,
		      char *err, size_t errlen);

/*
 * Parse command-line arguments (ASCII, program name excluded) as key=value pairs applied
 * on top of *cfg, so they override the file. Same contract as config_parse_file; errors
 * read "command line: argument <n>: ..." with n counted from 1.
 */
int config_parse_args(struct tessel_config *cfg, int argc, const char *const argv[], char *err,
		      size_t errlen);

/*
 * Render *cfg as one line of space-separated key=value pairs in a fixed order, e.g.
 * "next=\\EFI\\tests\\a.efi spp=auto log=info heap=32 no_vmx=continue sppt=eager iommu=auto".
 * Always NUL-terminated when len > 0 (truncated if buf is short).
 */
void config_format(const struct tessel_config *cfg, char *buf, size_t len);

#endif
