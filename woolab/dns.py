"""The lab's DNS server: the RDS and ElastiCache endpoint names, answered from the lab's state.

As on AWS, an endpoint is a name whose A record names the current host: the instance endpoint the
DB primary, the primary endpoint the cache primary, the reader endpoint the replicas. A failover
changes the answer; clients see it after the record's TTL (timing profile, docs/timing.md).
UDP on 127.0.0.1 only.
"""
import logging
import socket
import threading
from typing import Callable, List, Optional, Tuple

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

log = logging.getLogger("woolab")

Lookup = Callable[[str], Optional[Tuple[List[str], float]]]  # name -> (addresses, ttl) or None


class LabDns:
    def __init__(self, port: int, lookup: Lookup, host: str = "127.0.0.1"):
        self.lookup = lookup
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self._thread = threading.Thread(target=self._serve, name="lab-dns", daemon=True)

    def start(self) -> "LabDns":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return  # closed
            try:
                reply = self.answer(data)
            except Exception:  # a malformed query must not stop the server
                log.debug("DNS query from %s not understood", peer, exc_info=True)
                continue
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                return

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        found = self.lookup(name)
        if found is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY) and found[0]:
            addresses, ttl = found
            reply.answer.append(dns.rrset.from_text_list(question.name, int(round(ttl)), dns.rdataclass.IN,
                                                         dns.rdatatype.A, addresses))
        return reply.to_wire()
