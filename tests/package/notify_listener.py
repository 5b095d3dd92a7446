#!/usr/bin/env python3
"""A stand-in for systemd's notify socket: binds a unix datagram socket at PATH and appends each
datagram it receives to LOG as one line (newlines inside a message become spaces). Exits after
SECONDS (a bound for the test), or when it is killed.
Usage: notify_listener.py PATH LOG SECONDS"""
import os
import socket
import sys
import time

path, log, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
open(log, "a").close()  # exists = listening
deadline = time.monotonic() + seconds
while (left := deadline - time.monotonic()) > 0:
    s.settimeout(left)
    try:
        data = s.recv(4096)
    except socket.timeout:
        break
    with open(log, "a") as f:
        f.write(data.decode("utf-8", "replace").replace("\n", " ") + "\n")
os.unlink(path)
