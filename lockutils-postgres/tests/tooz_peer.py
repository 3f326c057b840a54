"""A tooz PostgreSQL client driven by tests/postgres.rs and benches/pg.rs.

    tooz_peer.py hold URL NAME      take the lock (blocking), print "held",
                                    hold until stdin closes, release
    tooz_peer.py try URL NAME       print "acquired" (and release) or "busy"
    tooz_peer.py time URL NAME      print "ready"; then for each line N on
                                    stdin, take and release N times and print
                                    the nanoseconds it took
    tooz_peer.py contend URL NAME   print "ready"; take and release in a loop
                                    until stdin closes
"""
import sys
import threading
import time
import warnings

warnings.simplefilter("ignore", DeprecationWarning)

from tooz import coordination  # noqa: E402


def main():
    cmd, url, name = sys.argv[1], sys.argv[2], sys.argv[3].encode()
    coord = coordination.get_coordinator(url, b"lockutils-test")
    coord.start()
    lock = coord.get_lock(name)
    if cmd == "hold":
        lock.acquire(blocking=True)
        print("held", flush=True)
        sys.stdin.read()
        lock.release()
    elif cmd == "try":
        if lock.acquire(blocking=False):
            print("acquired", flush=True)
            lock.release()
        else:
            print("busy", flush=True)
    elif cmd == "time":
        lock.acquire(blocking=True)
        lock.release()
        print("ready", flush=True)
        for line in sys.stdin:
            n = int(line)
            start = time.perf_counter_ns()
            for _ in range(n):
                lock.acquire(blocking=True)
                lock.release()
            print(time.perf_counter_ns() - start, flush=True)
    elif cmd == "contend":
        stop = threading.Event()
        threading.Thread(
            target=lambda: (sys.stdin.read(), stop.set()), daemon=True
        ).start()
        print("ready", flush=True)
        while not stop.is_set():
            lock.acquire(blocking=True)
            lock.release()
    coord.stop()


main()
