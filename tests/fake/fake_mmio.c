/* Fake MMIO for host tests: a small register file keyed by address; reads of unwritten
 * registers return 0. */
#include <hw.h>

#define FAKE_MMIO_SLOTS 64
static struct { u64 addr; u32 v; bool used; } mmio[FAKE_MMIO_SLOTS];

/* A device model over [base, base + size): its accessors replace the register file there. */
static struct {
	u64 base, size;
	u32 (*rd)(u64 off);
	void (*wr)(u64 off, u32 v);
} dev;

void fake_mmio_set_device(u64 base, u64 size, u32 (*rd)(u64 off), void (*wr)(u64 off, u32 v))
{
	dev.base = base;
	dev.size = rd ? size : 0;
	dev.rd = rd;
	dev.wr = wr;
}

static void (*mmio_hook)(u64 addr, u32 v);

void fake_mmio_set_hook(void (*hook)(u64 addr, u32 v)) { mmio_hook = hook; }

void fake_mmio_write32(u64 addr, u32 v)
{
	if (mmio_hook)
		mmio_hook(addr, v);
	if (addr - dev.base < dev.size) {
		dev.wr(addr - dev.base, v);
		return;
	}
	for (int i = 0; i < FAKE_MMIO_SLOTS; i++) {
		if (!mmio[i].used || mmio[i].addr == addr) {
			mmio[i].addr = addr;
			mmio[i].v = v;
			mmio[i].used = true;
			return;
		}
	}
}

u32 fake_mmio_read32(u64 addr)
{
	if (addr - dev.base < dev.size)
		return dev.rd(addr - dev.base);
	for (int i = 0; i < FAKE_MMIO_SLOTS; i++)
		if (mmio[i].used && mmio[i].addr == addr)
			return mmio[i].v;
	return 0;
}

u64 fake_dr6 = 0xffff0ff0ULL;
u64 fake_dr0_3[4];
