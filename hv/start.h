/* All-or-nothing start (hv/start.c). */
#ifndef HV_START_H
#define HV_START_H

/* Core init: a failed first VM entry returns to the loader; the loader's calls are open
 * until it seals the start. */
void start_hooks_init(void);

#endif
