/* Byte-precise protection: the table of pages in byte mode (spp/bytes.h). */
#include "spp/bytes.h"

static int find(const struct spp_bytes *t, u64 gfn)
{
	for (u32 i = 0; i < t->n; i++)
		if (t->gfn[i] == gfn)
			return (int)i;
	return -1;
}

const u64 *spp_bytes_find(const struct spp_bytes *t, u64 gfn)
{
	int i = find(t, gfn);
	return i < 0 ? NULL : t->mask[i];
}

bool spp_bytes_room(const struct spp_bytes *t, u32 pages)
{
	return pages <= SPP_BYTES_PAGES - t->n;
}

int spp_bytes_add(struct spp_bytes *t, u64 gfn, u32 map, unsigned off, unsigned len)
{
	int i = find(t, gfn);
	if (i < 0) {
		if (t->n == SPP_BYTES_PAGES)
			return -ENOMEM;
		i = (int)t->n++;
		t->gfn[i] = gfn;
		/* Each sub-page is 128 bytes: two words, all ones where the map protects it. */
		for (unsigned sp = 0; sp < 32; sp++) {
			u64 w = ((map >> sp) & 1) ? 0 : ~0ULL;
			t->mask[i][2 * sp] = w;
			t->mask[i][2 * sp + 1] = w;
		}
	}
	for (unsigned b = off; b < off + len; b++)
		t->mask[i][b >> 6] |= 1ULL << (b & 63);
	return 0;
}

void spp_bytes_drop(struct spp_bytes *t, u64 gfn)
{
	int i = find(t, gfn);
	if (i < 0)
		return;
	u32 last = t->n - 1;
	if ((u32)i != last) {
		t->gfn[i] = t->gfn[last];
		for (unsigned k = 0; k < SPP_BYTES_WORDS; k++)
			t->mask[i][k] = t->mask[last][k];
	}
	t->n = last;
}
