/* Local APIC inter-processor interrupts, in whichever mode (xAPIC or x2APIC) the guest chose. */
#ifndef DRIVERS_APIC_H
#define DRIVERS_APIC_H
#include <tessel/types.h>
/* Send an NMI to the processor with this APIC ID; true once the APIC accepted it. */
bool apic_send_nmi(u32 apic_id);
#endif
