# GDB support for goexec programs: goroutines, as Go's runtime-gdb.py shows them.
#
#   gdb -x goexec/gdb/goexec-gdb.py ./target/debug/app      (or, inside gdb: source <path>)
#
#   info goroutines            every live goroutine: id, status, wait reason, and for a
#                              running one its M and gdb thread; `*` marks the goroutine of
#                              the selected thread
#   goroutine N <command>      runs a gdb command (bt, info frame, ...) in goroutine N's
#                              context: a parked goroutine's saved registers stand in for
#                              the selected thread's meanwhile, a running one's thread is
#                              selected meanwhile
#
# Everything is read from process memory through the `goexec_gdb_info` static
# (goexec/src/runtime/debug.rs, which documents its layout): no function in the program is
# called and no Rust type information is needed, so it works on release builds (with only a
# symbol table: frames are then named from it) and on core files, except `goroutine N` for a
# parked goroutine, which needs a live process (a core's registers cannot be written).

import struct

import gdb

INFO_SYMBOL = "goexec_gdb_info"
INFO_VERSION = 2
# u32 version, 5 G offsets, m_entry_size, n_wait_reasons; 6 pointer-sized fields.
INFO_FORMAT = "<8I6Q"

STATUS_NAMES = ["idle", "runnable", "running", "waiting", "dead"]
IDLE, RUNNABLE, RUNNING, WAITING, DEAD = range(5)
SCAN_BIT = 0x80
# A list longer than this is a torn or garbage read.
MAX_LIST = 1 << 24


class GoexecError(gdb.GdbError):
    pass


class CLanguage:
    """Evaluates in C while in use: the Rust expression parser neither finds a symbol without
    debug information nor accepts C casts and register assignments."""

    def __enter__(self):
        self.saved = gdb.parameter("language")
        gdb.execute("set language c", to_string=True)
        return self

    def __exit__(self, *exc):
        gdb.execute("set language %s" % self.saved, to_string=True)
        return False


def read(addr, size):
    try:
        return bytes(gdb.selected_inferior().read_memory(addr, size))
    except gdb.MemoryError as e:
        raise GoexecError("cannot read %d bytes at %#x: %s" % (size, addr, e))


def read_u64(addr):
    return struct.unpack("<Q", read(addr, 8))[0]


class G:
    def __init__(self, addr, goid, status, scan, reason, sp):
        self.addr, self.goid, self.status, self.scan = addr, goid, status, scan
        self.reason, self.sp = reason, sp


class M:
    def __init__(self, curg_cell, mid, tid):
        self.curg_cell, self.mid, self.tid = curg_cell, mid, tid


class Info:
    """A snapshot of `goexec_gdb_info` and the lists it points to."""

    def __init__(self):
        if gdb.selected_inferior().pid == 0:
            raise GoexecError("no process (run the program or load a core first)")
        try:
            with CLanguage():
                addr = int(gdb.parse_and_eval("(unsigned long)&%s" % INFO_SYMBOL))
        except gdb.error:
            raise GoexecError(
                "no symbol %s: not a goexec program, or stripped" % INFO_SYMBOL)
        fields = struct.unpack(INFO_FORMAT, read(addr, struct.calcsize(INFO_FORMAT)))
        (version, self.off_id, self.off_status, self.off_reason, self.off_sp,
         self.off_wait_since, m_entry_size, n_reasons, reasons_ptr, self.trampoline,
         runtimes, nruntimes, allms, allmlen) = fields
        if version != INFO_VERSION:
            raise GoexecError("%s has version %d; this script reads version %d"
                              % (INFO_SYMBOL, version, INFO_VERSION))
        self.reasons = []
        for i in range(min(n_reasons, 256)):
            ptr, n = struct.unpack("<QQ", read(reasons_ptr + 16 * i, 16))
            self.reasons.append(read(ptr, n).decode("utf-8", "replace") if n else "")
        if nruntimes > MAX_LIST or allmlen > MAX_LIST:
            raise GoexecError("the goroutine lists look torn (stopped while one changed?)")
        self.gs = []
        # Each running runtime's G list: { gs: *const *const G, len: usize }.
        raw_views = read(runtimes, 8 * nruntimes) if nruntimes else b""
        for (view,) in struct.iter_unpack("<Q", raw_views):
            allgs, allglen = struct.unpack("<QQ", read(view, 16))
            if allglen > MAX_LIST:
                raise GoexecError("the goroutine lists look torn (stopped while one changed?)")
            raw = read(allgs, 8 * allglen) if allglen else b""
            for (gaddr,) in struct.iter_unpack("<Q", raw):
                self.gs.append(self.read_g(gaddr))
        self.gs.sort(key=lambda g: g.goid)
        self.ms = []
        for i in range(allmlen):
            cell, mid, tid = struct.unpack("<QQQ", read(allms + m_entry_size * i, 24))
            self.ms.append(M(cell, mid, tid))

    def read_g(self, addr):
        goid = read_u64(addr + self.off_id)
        status = read(addr + self.off_status, 1)[0]
        reason = read(addr + self.off_reason, 1)[0]
        sp = read_u64(addr + self.off_sp)
        return G(addr, goid, status & ~SCAN_BIT, bool(status & SCAN_BIT), reason, sp)

    def live(self):
        return [g for g in self.gs if g.status not in (IDLE, DEAD)]

    def reason_name(self, r):
        return self.reasons[r] if r < len(self.reasons) else "reason %d" % r

    def m_running(self, g):
        """The M whose current goroutine is `g`, or None."""
        for m in self.ms:
            try:
                if read_u64(m.curg_cell) == g.addr:
                    return m
            except GoexecError:
                pass
        return None

    def current_g(self):
        """The G the selected thread's M runs, or None."""
        th = gdb.selected_thread()
        if th is None:
            return None
        lwp = th.ptid[1]
        for m in self.ms:
            if m.tid == lwp:
                try:
                    cur = read_u64(m.curg_cell)
                except GoexecError:
                    return None
                return next((g for g in self.gs if g.addr == cur), None)
        return None

    def find(self, goid):
        for g in self.live():
            if g.goid == goid:
                return g
        raise GoexecError("no goroutine %d" % goid)


def thread_of(tid):
    for th in gdb.selected_inferior().threads():
        if th.ptid[1] == tid:
            return th
    return None


def status_text(info, g):
    s = STATUS_NAMES[g.status] if g.status < len(STATUS_NAMES) else "status %d" % g.status
    if g.status == WAITING or (g.status == RUNNING and info.reason_name(g.reason) == "syscall"):
        return "%s [%s]" % (s, info.reason_name(g.reason))
    return s


class InfoGoroutines(gdb.Command):
    """List the program's goroutines: id, status, wait reason; a running one's M and thread.

The goroutine running on the selected thread is marked with *."""

    def __init__(self):
        super().__init__("info goroutines", gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        info = Info()
        cur = info.current_g()
        for g in info.live():
            line = "%s %-5d %s" % ("*" if cur is g else " ", g.goid, status_text(info, g))
            if g.status == RUNNING:
                m = info.m_running(g)
                if m is None:
                    line += "  (M unknown)"
                else:
                    th = thread_of(m.tid)
                    where = "thread %d, " % th.num if th is not None else ""
                    line += "  on M%d (%sLWP %d)" % (m.mid, where, m.tid)
            gdb.write(line + "\n")


# A parked goroutine's saved context (goexec/src/arch/*.rs): each register's slot at the saved
# sp, and the stack pointer it had (the saved sp plus sp_off).
CONTEXTS = {
    "x86_64": {"pc": "rip", "sp": "rsp", "sp_off": 24, "saved": [("rip", 0), ("rbx", 8), ("rbp", 16)]},
    "aarch64": {"pc": "pc", "sp": "sp", "sp_off": 32, "saved": [("pc", 0), ("x29", 16), ("x19", 24)]},
}


def context_layout():
    name = gdb.selected_frame().architecture().name()
    if "x86-64" in name or "x86_64" in name:
        return CONTEXTS["x86_64"]
    if "aarch64" in name:
        return CONTEXTS["aarch64"]
    raise GoexecError("unsupported architecture %s (goexec runs on x86_64 and aarch64)" % name)


class ParkedContext:
    """While in use, the selected thread's registers are those of a parked goroutine's saved
    context; they are put back afterwards, whatever happens meanwhile."""

    def __init__(self, sp):
        self.sp = sp

    def __enter__(self):
        layout = context_layout()
        self.level = gdb.selected_frame().level()
        gdb.newest_frame().select()
        frame = gdb.selected_frame()
        regs = [r for r, _ in layout["saved"]] + [layout["sp"]]
        self.saved = [(r, int(frame.read_register(r)) & 0xFFFFFFFFFFFFFFFF) for r in regs]
        new = [(r, read_u64(self.sp + off)) for r, off in layout["saved"]]
        new.append((layout["sp"], self.sp + layout["sp_off"]))
        try:
            self.set(new)
        except gdb.error as e:
            try:
                self.restore()
            except gdb.error:
                pass
            # A core file's registers cannot be written.
            raise GoexecError("cannot switch to the goroutine's saved registers (%s); "
                              "this needs a live process, not a core file" % e)
        except BaseException:
            self.restore()
            raise
        return self

    def set(self, values):
        with CLanguage():
            for r, v in values:
                gdb.execute("set $%s = %d" % (r, v), to_string=True)

    def restore(self):
        self.set(self.saved)
        gdb.execute("frame %d" % self.level, to_string=True)

    def __exit__(self, *exc):
        self.restore()
        return False


class GoroutineCmd(gdb.Command):
    """Run a gdb command in a goroutine's context: goroutine ID COMMAND (say, goroutine 7 bt).

A parked or runnable goroutine's saved registers take the selected thread's place while the
command runs; a running goroutine's thread is selected meanwhile."""

    def __init__(self):
        super().__init__("goroutine", gdb.COMMAND_STACK, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        parts = arg.split(None, 1)
        if len(parts) < 2:
            raise GoexecError("usage: goroutine ID COMMAND (say, goroutine 7 bt)")
        try:
            goid = int(parts[0], 0)
        except ValueError:
            raise GoexecError("not a goroutine id: %s" % parts[0])
        cmd = parts[1]
        info = Info()
        g = info.find(goid)
        if g.status == RUNNING:
            self.on_thread(info, g, cmd, from_tty)
            return
        if g.scan:
            gdb.write("goroutine %d: a traceback is reading its stack; it is not moving\n" % goid)
        if g.sp == 0 or read_u64(g.sp) == info.trampoline:
            gdb.write("goroutine %d has not started: no frames\n" % goid)
            return
        with ParkedContext(g.sp):
            gdb.execute(cmd, from_tty)

    def on_thread(self, info, g, cmd, from_tty):
        if info.current_g() is g:
            gdb.execute(cmd, from_tty)
            return
        m = info.m_running(g)
        th = thread_of(m.tid) if m is not None else None
        if th is None:
            raise GoexecError("goroutine %d is running, but its thread is not known" % g.goid)
        orig = gdb.selected_thread()
        level = gdb.selected_frame().level()
        th.switch()
        try:
            gdb.execute(cmd, from_tty)
        finally:
            orig.switch()
            gdb.execute("frame %d" % level, to_string=True)


InfoGoroutines()
GoroutineCmd()
