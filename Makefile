# Tessel build. `make` builds build/tessel.efi; `make test` runs every test; `make run`
# boots the hypervisor with the demo guest in Bochs; `make bench` prints benchmarks.
# CROSS_COMPILE selects a GCC cross toolchain prefix for the target (as in Linux).

CROSS_COMPILE ?=
CC      := $(CROSS_COMPILE)gcc
LD      := $(CROSS_COMPILE)ld
OBJCOPY := $(CROSS_COMPILE)objcopy
AR      := $(CROSS_COMPILE)ar
NASM    ?= nasm
HOSTCC  ?= gcc
CLANG   ?= clang

B := build
# V=1 shows the full commands.
Q := $(if $(V),,@)
EFI_INC := /usr/include/efi
EFI_LIB := /usr/lib
GCC_INC := $(shell $(CC) -print-file-name=include)

WARN := -Wall -Wextra -Werror
# The hypervisor core: freestanding, linked at a fixed virtual base by linker.ld.
CORE_CFLAGS := -std=c11 $(WARN) -O2 -g -ffreestanding -nostdinc -isystem $(GCC_INC) \
	-fno-pic -fno-pie -mcmodel=kernel -mno-red-zone -mgeneral-regs-only \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fno-common \
	-ffunction-sections -fdata-sections -Iinclude/arch -Iinclude -I.
# UEFI programs (loader, tools, guest tests) built with GNU-EFI.
EFI_CFLAGS := -std=c11 $(WARN) -O2 -ffreestanding -fpic -fshort-wchar -mno-red-zone \
	-fno-stack-protector -fno-stack-check -maccumulate-outgoing-args -mgeneral-regs-only \
	-DGNU_EFI_USE_MS_ABI -I$(EFI_INC) -I$(EFI_INC)/x86_64 -Iinclude/arch -Iinclude -I.
EFI_LDFLAGS := -shared -Bsymbolic -nostdlib -znocombreloc -L$(EFI_LIB) -T$(EFI_LIB)/elf_x86_64_efi.lds
EFI_CRT0 := $(EFI_LIB)/crt0-efi-x86_64.o
EFI_SECTIONS := -j .text -j .sdata -j .data -j .rodata -j .dynamic -j .dynsym -j .rel \
	-j .rela -j .rel.* -j .rela.* -j .reloc
# Host unit tests: the same mm/, spp/, hv/ sources against tests/fake/ (the include path is the seam).
HOST_CFLAGS := -std=c11 $(WARN) -O1 -g -D_DEFAULT_SOURCE -Itests/fake -Iinclude -I. \
	-fsanitize=address,undefined -fno-omit-frame-pointer
HOST_LDFLAGS := -fsanitize=address,undefined

# ---- sources ----
CORE_C   := $(wildcard hv/*.c mm/*.c spp/*.c drivers/*.c) lib/fmt.c lib/string.c
CORE_ASM := $(wildcard hv/*.asm)
CORE_OBJ := $(CORE_C:%.c=$(B)/core/%.o) $(CORE_ASM:%.asm=$(B)/core/%.o)
# Host library: everything in mm/ spp/ hv/ (and the formatter) except files that are
# target-only by nature (listed in HOST_EXCLUDE).
HOST_EXCLUDE := hv/main.c hv/start.c
HOST_C   := $(filter-out $(HOST_EXCLUDE),$(wildcard hv/*.c mm/*.c spp/*.c drivers/*.c)) lib/fmt.c $(wildcard tests/fake/*.c)
HOST_OBJ := $(HOST_C:%.c=$(B)/host/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)
BOOT_C   := $(wildcard boot/*.c) lib/fmt.c drivers/uart.c hv/vmx_caps.c
BOOT_OBJ := $(BOOT_C:%.c=$(B)/boot/%.o) $(B)/boot/launch.o $(B)/boot/core_blob.o
GUEST_LIB_C := $(wildcard tests/guest/lib/*.c) lib/fmt.c
GUEST_LIB_OBJ := $(GUEST_LIB_C:%.c=$(B)/guest/%.o)
GUEST_SRC := $(wildcard tests/guest/*.c)
GUEST_EFI := $(GUEST_SRC:tests/guest/%.c=$(B)/guest/%.efi)
TOOL_SRC := $(wildcard tools/*.c)
TOOL_EFI := $(TOOL_SRC:tools/%.c=$(B)/tools/%.efi)
FAIL_EFI := $(B)/tessel-failentry0.efi $(B)/tessel-failentry1.efi $(B)/tessel-failentry2.efi

.PHONY: all test unit systest run run-linux bench fuzz clean deps linux image
all: $(B)/tessel.efi $(B)/tessel-test.efi $(FAIL_EFI) $(GUEST_EFI) $(TOOL_EFI)

deps:
	@tools/deps.sh

# ---- core ----
$(B)/core/%.o: %.c
	@mkdir -p $(dir $@)
	@echo '  CC      $<'
	$(Q)$(CC) $(CORE_CFLAGS) -MMD -c $< -o $@
$(B)/core/%.o: %.asm
	@mkdir -p $(dir $@)
	@echo '  NASM    $<'
	$(Q)$(NASM) -f elf64 -g -MD $(@:.o=.d) $< -o $@
$(B)/core.elf: $(CORE_OBJ) linker.ld
	@echo '  LD      $@'
	$(Q)$(LD) -nostdlib -static -z max-page-size=4096 --gc-sections -T linker.ld $(CORE_OBJ) -o $@

# The test variant: the same core with test-only hypercalls (spp/test_hooks.c). Only the
# system tests that need them boot build/tessel-test.efi; everything else runs what ships.
CORE_TEST_OBJ := $(CORE_C:%.c=$(B)/core-test/%.o) $(CORE_ASM:%.asm=$(B)/core-test/%.o)
$(B)/core-test/%.o: %.c
	@mkdir -p $(dir $@)
	@echo '  CC      $< (test hooks)'
	$(Q)$(CC) $(CORE_CFLAGS) -DTESSEL_TEST_HOOKS -MMD -c $< -o $@
$(B)/core-test/%.o: %.asm
	@mkdir -p $(dir $@)
	$(Q)$(NASM) -f elf64 -g -DTESSEL_TEST_HOOKS $< -o $@
$(B)/core-test.elf: $(CORE_TEST_OBJ) linker.ld
	@echo '  LD      $@'
	$(Q)$(LD) -nostdlib -static -z max-page-size=4096 --gc-sections -T linker.ld $(CORE_TEST_OBJ) -o $@
$(B)/boot/core_blob_test.o: boot/core_blob.asm $(B)/core-test.elf
	@mkdir -p $(dir $@)
	$(Q)$(NASM) -f elf64 -DCORE_ELF='"$(B)/core-test.elf"' $< -o $@
$(B)/tessel-test.so: $(filter-out $(B)/boot/core_blob.o,$(BOOT_OBJ)) $(B)/boot/core_blob_test.o
	@echo '  LD      $@'
	$(Q)$(LD) $(EFI_LDFLAGS) $(EFI_CRT0) $^ -o $@ -lefi -lgnuefi

# Variants whose first VM entry fails on one CPU (hv/vmx.c TESSEL_TEST_FAIL_ENTRY = the
# processor number): build/tessel-failentry0.efi (the BSP), -1 and -2 (APs), for the
# all-or-nothing start tests. Only hv/vmx.c differs from the shipped core.
define FAIL_VARIANT
$(B)/core-fail$(1)/hv/vmx.o: hv/vmx.c
	@mkdir -p $$(dir $$@)
	@echo '  CC      $$< (first entry fails on CPU $(1))'
	$(Q)$(CC) $(CORE_CFLAGS) -DTESSEL_TEST_FAIL_ENTRY=$(1) -MMD -c $$< -o $$@
$(B)/core-fail$(1).elf: $(filter-out $(B)/core/hv/vmx.o,$(CORE_OBJ)) $(B)/core-fail$(1)/hv/vmx.o linker.ld
	@echo '  LD      $$@'
	$(Q)$(LD) -nostdlib -static -z max-page-size=4096 --gc-sections -T linker.ld $$(filter %.o,$$^) -o $$@
$(B)/boot/core_blob_fail$(1).o: boot/core_blob.asm $(B)/core-fail$(1).elf
	@mkdir -p $$(dir $$@)
	$(Q)$(NASM) -f elf64 -DCORE_ELF='"$(B)/core-fail$(1).elf"' $$< -o $$@
$(B)/tessel-failentry$(1).so: $(filter-out $(B)/boot/core_blob.o,$(BOOT_OBJ)) $(B)/boot/core_blob_fail$(1).o
	@echo '  LD      $$@'
	$(Q)$(LD) $(EFI_LDFLAGS) $(EFI_CRT0) $$^ -o $$@ -lefi -lgnuefi
endef
$(eval $(call FAIL_VARIANT,0))
$(eval $(call FAIL_VARIANT,1))
$(eval $(call FAIL_VARIANT,2))

# ---- loader (embeds core.elf) ----
$(B)/boot/%.o: %.c
	@mkdir -p $(dir $@)
	@echo '  CC      $<'
	$(Q)$(CC) $(EFI_CFLAGS) -MMD -c $< -o $@
$(B)/boot/launch.o: boot/launch.asm
	@mkdir -p $(dir $@)
	@echo '  NASM    $<'
	$(Q)$(NASM) -f elf64 $< -o $@
$(B)/boot/core_blob.o: boot/core_blob.asm $(B)/core.elf
	@mkdir -p $(dir $@)
	@echo '  NASM    $<'
	$(Q)$(NASM) -f elf64 -DCORE_ELF='"$(B)/core.elf"' $< -o $@
$(B)/tessel.so: $(BOOT_OBJ)
	@echo '  LD      $@'
	$(Q)$(LD) $(EFI_LDFLAGS) $(EFI_CRT0) $^ -o $@ -lefi -lgnuefi
%.efi: %.so
	@echo '  EFI     $@'
	$(Q)$(OBJCOPY) $(EFI_SECTIONS) --target efi-app-x86_64 --subsystem=10 $< $@

# ---- guest test programs and UEFI tools ----
$(B)/guest/%.o: %.c
	@mkdir -p $(dir $@)
	@echo '  CC      $<'
	$(Q)$(CC) $(EFI_CFLAGS) -Itests/guest/lib -Itools -MMD -c $< -o $@
$(B)/guest/%.o: tests/guest/%.c
	@mkdir -p $(dir $@)
	@echo '  CC      $<'
	$(Q)$(CC) $(EFI_CFLAGS) -Itests/guest/lib -Itools -MMD -c $< -o $@
$(B)/guest/%.so: $(B)/guest/%.o $(GUEST_LIB_OBJ)
	@echo '  LD      $@'
	$(Q)$(LD) $(EFI_LDFLAGS) $(EFI_CRT0) $^ -o $@ -lefi -lgnuefi
$(B)/tools/%.o: tools/%.c
	@mkdir -p $(dir $@)
	@echo '  CC      $<'
	$(Q)$(CC) $(EFI_CFLAGS) -Itests/guest/lib -Itools -MMD -c $< -o $@
$(B)/tools/%.so: $(B)/tools/%.o $(GUEST_LIB_OBJ)
	@echo '  LD      $@'
	$(Q)$(LD) $(EFI_LDFLAGS) $(EFI_CRT0) $^ -o $@ -lefi -lgnuefi
# Tools' shared code in tools/lib/ (not programs themselves): extra objects per tool.
$(B)/tools/tesselctl.so: $(B)/tools/lib/tesselctl_parse.o
.PRECIOUS: $(B)/%.so $(B)/guest/%.o $(B)/tools/%.o

# ---- the Linux test guest (tools/linux/README.md) ----
LX := $(B)/linux
linux: $(LX)/acpi-loader.efi $(LX)/vmlinuz.efi $(LX)/initrd.img
$(LX)/dsdt.h: tools/linux/gen-dsdt.py
	@mkdir -p $(dir $@)
	$(Q)python3 $< > $@
$(LX)/acpi-loader.o: tools/linux/acpi-loader.c $(LX)/dsdt.h
	@echo '  CC      $<'
	$(Q)$(CC) $(filter-out -DGNU_EFI_USE_MS_ABI,$(EFI_CFLAGS)) -I$(LX) -c $< -o $@ # its EFIAPI efi_main wants the sysv wrapper ABI
$(LX)/acpi-loader.so: $(LX)/acpi-loader.o
	$(Q)$(LD) $(EFI_LDFLAGS) $(EFI_CRT0) $^ -o $@ -lefi -lgnuefi
# Kernel, busybox and the kernel's release name (its linux-headers get installed) in one go.
$(LX)/kernel-release: tools/linux/fetch.sh
	$(Q)tools/linux/fetch.sh $(LX)
$(LX)/vmlinuz.efi $(LX)/busybox $(LX)/efivarfs.ko: $(LX)/kernel-release
	@test -f $@ || { rm -f $<; $(MAKE) $<; }
# The guest driver: an out-of-tree module built in build/linux/driver/ against the headers.
LX_DRV_SRC := tools/linux/driver/tessel.c tools/linux/driver/guard.c tools/linux/driver/tessel_kapi.h \
	tools/linux/driver/Kbuild tools/linux/tessel_ioctl.h tools/tessel.h
$(LX)/driver/tessel_guard.ko: $(LX)/driver/tessel.ko
$(LX)/driver/tessel.ko: $(LX_DRV_SRC) $(LX)/kernel-release
	@mkdir -p $(dir $@)
	@echo '  KBUILD  $@'
	$(Q)cp $(LX_DRV_SRC) $(dir $@)
	$(Q)$(MAKE) -s -C /usr/src/linux-headers-$$(cat $(LX)/kernel-release) M=$(abspath $(dir $@)) modules
# The kernel guard's malicious test module (tests/linux/evil/): only in the test initramfs.
LX_EVIL_SRC := tests/linux/evil/tessel_evil.c tests/linux/evil/Kbuild tools/tessel.h
$(LX)/evil/tessel_evil.ko: $(LX_EVIL_SRC) $(LX)/kernel-release
	@mkdir -p $(dir $@)
	@echo '  KBUILD  $@'
	$(Q)cp $(LX_EVIL_SRC) $(dir $@)
	$(Q)$(MAKE) -s -C /usr/src/linux-headers-$$(cat $(LX)/kernel-release) M=$(abspath $(dir $@)) modules
# The conformance program: static, for the initramfs.
$(LX)/tessel-conform: $(wildcard tools/linux/conform/*.c) tools/linux/conform/conform.h tools/linux/tessel_ioctl.h tools/tessel.h
	@mkdir -p $(dir $@)
	@echo '  CC      $@'
	$(Q)$(HOSTCC) -static -O2 -std=gnu11 -Wall -Wextra -Werror -Itools/linux -Itools $(filter %.c,$^) -o $@ -lpthread
$(LX)/initrd.img: tools/linux/mkinitrd.sh tools/linux/init tools/linux/tessel-guard-demo $(LX)/busybox $(LX)/efivarfs.ko \
		$(LX)/driver/tessel.ko $(LX)/evil/tessel_evil.ko $(LX)/tessel-conform
	@echo '  INITRD  $@'
	$(Q)tools/linux/mkinitrd.sh $(LX)
$(LX)/cmdline.txt: $(LX)/initrd.img

# ---- the Linux guest of the IOMMU group (tests/iommu/, docs/IOMMU.md): virtio disk modules ----
IOMMU_LX := $(B)/iommu/initrd-dma.img
$(IOMMU_LX): tests/iommu/mkinitrd-dma.sh tests/iommu/init-dma $(LX)/kernel-release $(LX)/vmlinuz.efi $(LX)/busybox
	@echo '  INITRD  $@'
	$(Q)tests/iommu/mkinitrd-dma.sh $(B)/iommu
iommu-linux: $(IOMMU_LX)
.PHONY: iommu-linux

# ---- host unit tests ----
$(B)/host/%.o: %.c
	@mkdir -p $(dir $@)
	@echo '  HOSTCC  $<'
	$(Q)$(HOSTCC) $(HOST_CFLAGS) -MMD -c $< -o $@
$(B)/host/libtessel.a: $(HOST_OBJ)
	@echo '  AR      $@'
	$(Q)rm -f $@; $(AR) rcs $@ $^
$(B)/unit/%: tests/unit/%.c $(B)/host/libtessel.a
	@mkdir -p $(dir $@)
	@echo '  HOSTLD  $@'
	$(Q)$(HOSTCC) $(HOST_CFLAGS) -MMD $< $(UNIT_EXTRA_$(notdir $@)) $(B)/host/libtessel.a -o $@ $(HOST_LDFLAGS) -lcmocka $(UNIT_LIBS_$(notdir $@))
UNIT_LIBS_test_insn := -lZydis
# Extra sources a unit test compiles directly (e.g. loader code outside the host library).
UNIT_EXTRA_test_config := boot/config.c
UNIT_EXTRA_test_pm1 := boot/acpi_sleep.c
UNIT_EXTRA_test_tesselctl := tools/lib/tesselctl_parse.c
UNIT_EXTRA_test_profiles := tests/data/vmx_profiles/profiles.c
UNIT_EXTRA_test_entry_check := tests/data/vmx_profiles/profiles.c

unit: $(UNIT_BIN)
	@tests/harness/run-unit.sh $(UNIT_BIN)

test: deps all $(UNIT_BIN) linux image iommu-linux
	@tests/harness/run-all.sh

# The installable disk image (tools/mkimage.sh; README "On real hardware").
image: $(B)/tessel.img
$(B)/tessel.img: tools/mkimage.sh $(B)/tessel.efi $(B)/tools/demo.efi $(B)/tools/tesselctl.efi
	@echo '  IMAGE   $@'
	$(Q)tools/mkimage.sh $@ >/dev/null

run: deps all
	@tools/run-demo.sh
run-linux: deps all linux
	@tools/run-linux.sh

bench: deps all
	@tools/bench.sh

clean:
	rm -rf $(B)

# ---- fuzzing: a libFuzzer target over the hypercall interface (tests/fuzz/README.md) ----
# The real hv/ mm/ spp/ drivers/ sources against tests/fake, compiled by clang with
# coverage and sanitizers (not the gcc-built libtessel.a). `make fuzz` runs for FUZZ_TIME
# seconds and keeps what it finds in build/fuzz/corpus; `make fuzz-short` is the fixed,
# deterministic run `make test` uses (FUZZ_SHORT_RUNS inputs, seed 1, ASLR off: < 30 s).
FUZZ_CFLAGS := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
	-g -O1 -std=c11 -D_DEFAULT_SOURCE -Itests/fake -Iinclude -I.
FUZZ_OBJ := $(HOST_C:%.c=$(B)/fuzz/obj/%.o)
comma := ,
FUZZ_TIME ?= 600
FUZZ_SHORT_RUNS ?= 30000
FUZZ_FLAGS := -max_len=1024 -timeout=10 -print_final_stats=1
# Boot-time helpers the harness calls once per input (page allocator, MTRR resolution) and
# the fake hardware: sanitized but without coverage feedback, which would dominate the cost.
FUZZ_NOCOV := mm/pmm.c mm/mtrr.c lib/fmt.c $(wildcard tests/fake/*.c)
$(B)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo '  CLANG   $<'
	$(Q)$(CLANG) $(if $(filter $<,$(FUZZ_NOCOV)),$(subst fuzzer$(comma),,$(FUZZ_CFLAGS)),$(FUZZ_CFLAGS)) -MMD -c $< -o $@
$(B)/fuzz/libtessel-fuzz.a: $(FUZZ_OBJ)
	@echo '  AR      $@'
	$(Q)rm -f $@; $(AR) rcs $@ $^
# The harnesses get no coverage feedback either (their checks would dominate).
FUZZ_HARNESS_CFLAGS := $(subst fuzzer$(comma),,$(FUZZ_CFLAGS))
$(B)/fuzz/fuzz_common.o: tests/fuzz/fuzz_common.c
	@mkdir -p $(dir $@)
	@echo '  CLANG   $<'
	$(Q)$(CLANG) $(FUZZ_HARNESS_CFLAGS) -MMD -c $< -o $@
$(B)/fuzz/fuzz_hypercall $(B)/fuzz/fuzz_exit: $(B)/fuzz/%: tests/fuzz/%.c $(B)/fuzz/fuzz_common.o $(B)/fuzz/libtessel-fuzz.a
	@echo '  CLANGLD $@'
	$(Q)$(CLANG) $(FUZZ_HARNESS_CFLAGS) -MMD -MT $@ -c $< -o $@.o
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $@.o $(B)/fuzz/fuzz_common.o $(B)/fuzz/libtessel-fuzz.a -o $@
-include $(B)/fuzz/fuzz_common.d $(B)/fuzz/fuzz_hypercall.d $(B)/fuzz/fuzz_exit.d
fuzz: $(B)/fuzz/fuzz_hypercall
	@mkdir -p $(B)/fuzz/corpus $(B)/fuzz/crashes
	$(B)/fuzz/fuzz_hypercall $(FUZZ_FLAGS) -max_total_time=$(FUZZ_TIME) \
		-artifact_prefix=$(B)/fuzz/crashes/ $(B)/fuzz/corpus tests/fuzz/corpus
# fuzz-short / fuzz-exit-short: NAME CORPUS RUNS [ENV]. The short runs are deterministic.
define fuzz_short_run
	@rm -rf $(B)/fuzz/short-$(1); mkdir -p $(B)/fuzz/short-$(1)/corpus
	@log=$(B)/fuzz/short-$(1)/log; norand=; \
	if setarch $$(uname -m) -R true 2>/dev/null; then norand="setarch $$(uname -m) -R"; fi; \
	if $(4) $$norand $(B)/fuzz/$(1) $(FUZZ_FLAGS) -runs=$(3) -seed=1 \
		-artifact_prefix=$(B)/fuzz/short-$(1)/ $(B)/fuzz/short-$(1)/corpus $(2) >$$log 2>&1; then \
		n=$$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' $$log | tail -n 1); \
		echo "$(5): $${n:-?} runs, 0 crashes"; \
	else \
		tail -n 60 $$log; echo "$(5): FAILED, crash input in $(B)/fuzz/short-$(1)/ (log $$log)"; exit 1; \
	fi
endef
fuzz-short: $(B)/fuzz/fuzz_hypercall
	$(call fuzz_short_run,fuzz_hypercall,tests/fuzz/corpus,$(FUZZ_SHORT_RUNS),,fuzz)
# The exit-path fuzzer (tests/fuzz/README.md). FUZZ_EXIT_KNOWN lists finding classes to count
# instead of failing on (empty: every class found so far is fixed).
FUZZ_EXIT_KNOWN ?=
FUZZ_EXIT_SHORT_RUNS ?= 20000
fuzz-exit: $(B)/fuzz/fuzz_exit
	@mkdir -p $(B)/fuzz/corpus_exit $(B)/fuzz/crashes_exit
	FUZZ_EXIT_KNOWN=$(FUZZ_EXIT_KNOWN) $(B)/fuzz/fuzz_exit $(FUZZ_FLAGS) -max_total_time=$(FUZZ_TIME) \
		-artifact_prefix=$(B)/fuzz/crashes_exit/ $(B)/fuzz/corpus_exit tests/fuzz/corpus_exit
fuzz-exit-short: $(B)/fuzz/fuzz_exit
	$(call fuzz_short_run,fuzz_exit,tests/fuzz/corpus_exit,$(FUZZ_EXIT_SHORT_RUNS),FUZZ_EXIT_KNOWN=$(FUZZ_EXIT_KNOWN),fuzz-exit)
.PHONY: fuzz-short fuzz-exit fuzz-exit-short

-include $(shell find $(B) -name '*.d' 2>/dev/null)
