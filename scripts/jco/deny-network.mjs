// Imported by `jco run --jco-import` before the component starts: denies the shim's network
// (TCP, UDP and name lookup), so jco is a host that restricts the network, like an edge
// platform. scripts/test-all.sh runs wasm-tests/restricted.rs under jco with it.
import { _denyDnsLookup, _denyTcp, _denyUdp } from "@bytecodealliance/preview2-shim/sockets";

_denyTcp();
_denyUdp();
_denyDnsLookup();
