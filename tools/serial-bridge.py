#!/usr/bin/env python3
"""serial-bridge.py PORT LOG: connects this terminal to a Bochs COM1 served on 127.0.0.1:PORT
(bochs.sh --serial-port) and copies everything the guest prints to LOG as well.

Keys go to the guest as typed. On a terminal, stdin is put into raw mode (the guest's shell
echoes and edits lines itself; Ctrl-C goes to the guest) and Ctrl-] ends the session. When
stdin is not a terminal (a script or a test), its lines are typed in one at a time, each once
the shell shows a fresh prompt (PROMPT, default a line ending in "# ", terminal escape
sequences after it allowed) after the guest
printed SEND_AFTER (default "GUEST-SHELL"); the bridge ends when the guest closes the port.
(Waiting for the prompt matters: when the shell exits, the tty is hung up and output still
queued for the slow UART is lost.)
"""
import os
import re
import select
import socket
import sys
import termios
import time
import tty

CTRL_RBRACKET = b'\x1d'


def connect(port, deadline):
    while True:
        try:
            return socket.create_connection(('127.0.0.1', port), timeout=2)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main():
    port, log_path = int(sys.argv[1]), sys.argv[2]
    send_after = re.compile(os.environ.get('SEND_AFTER', r'GUEST-SHELL').encode())
    # busybox ash follows its prompt with a cursor-position query (ESC [6n), which may arrive in
    # the same read as the prompt or in a later one: allow escape sequences after it.
    prompt = re.compile(os.environ.get('PROMPT', r'(^|\n)[^\n]*# (\x1b\[[0-9;?]*[A-Za-z])*$').encode())
    sock = connect(port, time.monotonic() + 60)
    sock.setblocking(False)
    interactive = os.isatty(0)
    saved = termios.tcgetattr(0) if interactive else None
    if interactive:
        tty.setraw(0)
    seen = b''
    started = interactive  # SEND_AFTER seen
    ready = interactive    # a prompt since the last line sent
    pending = []  # lines waiting for the guest (non-interactive)
    stdin_open = True
    last_out = time.monotonic()
    try:
        with open(log_path, 'ab', buffering=0) as log:
            while True:
                fds = [sock] + ([0] if stdin_open and (interactive or not pending) else [])
                r, _, _ = select.select(fds, [], [], 0.2)
                if sock in r:
                    data = sock.recv(4096)
                    if not data:
                        break
                    log.write(data)
                    os.write(1, data)
                    last_out = time.monotonic()
                    if not ready:
                        seen = (seen + data.replace(b'\r', b''))[-4096:]
                        if not started:
                            m = send_after.search(seen)
                            if m:
                                started, seen = True, seen[m.end():]
                        ready = started and bool(prompt.search(seen))
                if 0 in r:
                    data = os.read(0, 1024)
                    if not data:
                        stdin_open = False
                    elif interactive:
                        if CTRL_RBRACKET in data:
                            break
                        sock.sendall(data)
                    else:
                        pending += [l + b'\n' for l in data.split(b'\n') if l.strip()]
                if not interactive and ready and pending and time.monotonic() - last_out > 0.3:
                    line = pending.pop(0)
                    for b in line:  # a 16550 FIFO is 16 bytes: do not outrun the guest
                        sock.sendall(bytes([b]))
                        time.sleep(0.002)
                    ready, seen = False, b''
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
    return 0


if __name__ == '__main__':
    sys.exit(main())
