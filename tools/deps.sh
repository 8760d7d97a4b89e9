#!/usr/bin/env bash
# deps.sh: installs the Debian packages the build and the tests need (EMULATORS.md lists
# why each is there), and only if one is missing: then `apt-get update` and a
# non-interactive install, with sudo when not root. Silent when everything is present.
set -euo pipefail
pkgs=(bochs bochsbios vgabios bochs-sdl bochs-term ovmf qemu-system-x86 gnu-efi nasm mtools gdisk cpio
	dosfstools libcmocka-dev libzydis-dev clang libclang-rt-14-dev python3 gcc make binutils)
missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
