"""A seccomp filter for step processes: the system calls a build never needs and an escape would.

Bubblewrap loads it (`--seccomp FD`) just before it starts the step. Refused with EPERM: mounting
and namespaces (mount, umount2, pivot_root, setns, unshare, the new mount API; clone with any
CLONE_NEW* flag), tracing and reading other processes (ptrace, process_vm_*, kcmp), the kernel
keyring, bpf, perf events, userfaultfd, io_uring (it would bypass this filter), modules, kexec,
reboot, swap, clocks, syslog, quotas, accounting, raw I/O ports, file handles. clone3 answers
ENOSYS (its flags cannot be inspected), so the C library falls back to clone. System calls of
another architecture (32-bit calls on a 64-bit kernel, the x32 ABI) are refused as a whole.
The program is plain classic BPF, assembled here: no library is needed.
"""

from __future__ import annotations

import platform
import struct

__all__ = ["SUPPORTED", "filter_program"]

_DENIED = (
    "mount",
    "umount2",
    "pivot_root",
    "ptrace",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "setns",
    "unshare",
    "open_by_handle_at",
    "name_to_handle_at",
    "userfaultfd",
    "iopl",
    "ioperm",
    "acct",
    "quotactl",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "open_tree",
    "mount_setattr",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "lookup_dcookie",
    "syslog",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "vhangup",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)
_TABLES = {  # (AUDIT_ARCH, system call numbers) from the kernel's unistd headers
    "x86_64": (
        0xC000003E,
        {
            "mount": 165,
            "umount2": 166,
            "pivot_root": 155,
            "ptrace": 101,
            "keyctl": 250,
            "add_key": 248,
            "request_key": 249,
            "bpf": 321,
            "perf_event_open": 298,
            "kexec_load": 246,
            "kexec_file_load": 320,
            "init_module": 175,
            "finit_module": 313,
            "delete_module": 176,
            "reboot": 169,
            "swapon": 167,
            "swapoff": 168,
            "setns": 308,
            "unshare": 272,
            "open_by_handle_at": 304,
            "name_to_handle_at": 303,
            "userfaultfd": 323,
            "iopl": 172,
            "ioperm": 173,
            "acct": 163,
            "quotactl": 179,
            "move_mount": 429,
            "fsopen": 430,
            "fsconfig": 431,
            "fsmount": 432,
            "fspick": 433,
            "open_tree": 428,
            "mount_setattr": 442,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
            "kcmp": 312,
            "lookup_dcookie": 212,
            "syslog": 103,
            "settimeofday": 164,
            "clock_settime": 227,
            "adjtimex": 159,
            "clock_adjtime": 305,
            "vhangup": 153,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "clone": 56,
            "clone3": 435,
        },
    ),
    "aarch64": (
        0xC00000B7,
        {
            "mount": 40,
            "umount2": 39,
            "pivot_root": 41,
            "ptrace": 117,
            "keyctl": 219,
            "add_key": 217,
            "request_key": 218,
            "bpf": 280,
            "perf_event_open": 241,
            "kexec_load": 104,
            "kexec_file_load": 294,
            "init_module": 105,
            "finit_module": 273,
            "delete_module": 106,
            "reboot": 142,
            "swapon": 224,
            "swapoff": 225,
            "setns": 268,
            "unshare": 97,
            "open_by_handle_at": 265,
            "name_to_handle_at": 264,
            "userfaultfd": 282,
            "acct": 89,
            "quotactl": 60,
            "move_mount": 429,
            "fsopen": 430,
            "fsconfig": 431,
            "fsmount": 432,
            "fspick": 433,
            "open_tree": 428,
            "mount_setattr": 442,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
            "kcmp": 272,
            "lookup_dcookie": 18,
            "syslog": 116,
            "settimeofday": 170,
            "clock_settime": 112,
            "adjtimex": 171,
            "clock_adjtime": 266,
            "vhangup": 58,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "clone": 220,
            "clone3": 435,
        },
    ),
}
SUPPORTED = frozenset(_TABLES)

_CLONE_NEW = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
_X32_BIT = 0x40000000
_ALLOW, _EPERM, _ENOSYS = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (arg 0's low word, little-endian)


def filter_program(machine: str | None = None) -> bytes:
    """The filter for this machine's architecture, as bwrap reads it (an array of sock_filter)."""
    machine = machine or platform.machine()
    if machine not in _TABLES:
        raise ValueError(f"no seccomp table for {machine}")
    arch, numbers = _TABLES[machine]
    code: list[tuple] = [(_LD_W_ABS, 0, 0, _ARCH), (_JEQ, 1, 0, arch), ("deny",), (_LD_W_ABS, 0, 0, _NR)]
    if machine == "x86_64":
        code += [(_JGE, 0, 1, _X32_BIT), ("deny",)]
    for name in _DENIED:
        if name in numbers:
            code += [(_JEQ, 0, 1, numbers[name]), ("deny",)]
    code += [
        (_JEQ, 0, 1, numbers["clone3"]),
        (_RET, 0, 0, _ENOSYS),
        (_JEQ, 0, 3, numbers["clone"]),
        (_LD_W_ABS, 0, 0, _ARG0),
        (_JSET, 0, 1, _CLONE_NEW),
        ("deny",),
        (_RET, 0, 0, _ALLOW),
    ]
    program = [(_RET, 0, 0, _EPERM) if op == ("deny",) else op for op in code]
    return b"".join(struct.pack("=HBBI", *op) for op in program)
