"""Resident memory of the guest program inside a qemu-user process, in KiB.

Usage: python3 cross/guest-rss.py PID QEMU_PAGE_LOG
QEMU_PAGE_LOG is what qemu-user wrote with QEMU_LOG=page and QEMU_LOG_FILENAME set: the guest
base address and, after every change, the guest's page layout. The process's own VmRSS counts the
emulator too (its translated-code cache, its libraries: about 15 MiB); this sums, from
/proc/PID/smaps, only the resident pages of mappings that lie in the guest's address ranges: the
program's code, data, heap, thread stacks, as it would use them on a device.
"""
import re
import sys


def guest_ranges(log_path):
    base = 0
    layout = []
    current = None
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.match(r"Locating guest address space @ (0x[0-9a-f]+)", line)
            if m:
                base = int(m.group(1), 16)
                continue
            if line.startswith("start") and "prot" in line:
                current = []
                layout = current
                continue
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) [0-9a-f]+ (\S+)$", line.strip())
            if current is not None and m:
                if m.group(3) != "---":
                    current.append((int(m.group(1), 16) + base, int(m.group(2), 16) + base))
            else:
                current = None
    return layout


def main():
    pid, log_path = sys.argv[1], sys.argv[2]
    ranges = guest_ranges(log_path)
    if not ranges:
        sys.exit("no guest page layout in " + log_path)
    total = 0
    start = end = None
    with open(f"/proc/{pid}/smaps", encoding="utf-8") as f:
        for line in f:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
            if m:
                start, end = int(m.group(1), 16), int(m.group(2), 16)
                continue
            if line.startswith("Rss:") and start is not None:
                if any(s < end and start < e for s, e in ranges):
                    total += int(line.split()[1])
    print(total)


if __name__ == "__main__":
    main()
