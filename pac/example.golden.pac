// Tollgate PAC file, generated from config: edit the config, not this file.
// Default PAC for tollgate.test
//
// Rules, first match wins:
//   1. Tollgate's own hosts (*.tollgate.test) always go through the proxy: the sign-in pages and the
//      status page must take the same path as user traffic.
//   2. Plain host names, private / link-local / loopback IP literals and the bypass list go DIRECT.
//      IP ranges are tested with isInNet on IP literals only, so no rule costs a DNS lookup.
//   3. Everything else goes to the gateways in order; the browser tries the next when one is down.
//
// Each pattern has its own shExpMatch call: shExpMatch takes one pattern, and any further
// argument is ignored, so shExpMatch(host, "*.a.com", "*.b.com") never tests *.b.com.
function FindProxyForURL(url, host) {
  var proxies = "PROXY proxy-1.example.net:9400; PROXY proxy-2.example.net:9400";
  host = host.toLowerCase();
  var ipv4 = /^[0-9]{1,3}(\.[0-9]{1,3}){3}$/.test(host);
  // IPv6 literals have no dot, so some engines call them plain host names; they are told apart first.
  var ipv6 = host.indexOf(":") >= 0;
  if (shExpMatch(host, "tollgate.test")) return proxies;
  if (shExpMatch(host, "*.tollgate.test")) return proxies;
  if (!ipv6 && isPlainHostName(host)) return "DIRECT";
  if (ipv4 && isInNet(host, "10.0.0.0", "255.0.0.0")) return "DIRECT";
  if (ipv4 && isInNet(host, "172.16.0.0", "255.240.0.0")) return "DIRECT";
  if (ipv4 && isInNet(host, "192.168.0.0", "255.255.0.0")) return "DIRECT";
  if (ipv4 && isInNet(host, "169.254.0.0", "255.255.0.0")) return "DIRECT";
  if (ipv4 && isInNet(host, "127.0.0.0", "255.0.0.0")) return "DIRECT";
  if (ipv6 && shExpMatch(host, "::1")) return "DIRECT";
  if (ipv6 && shExpMatch(host, "fc*:*")) return "DIRECT";
  if (ipv6 && shExpMatch(host, "fd*:*")) return "DIRECT";
  if (ipv6 && shExpMatch(host, "fe8*:*")) return "DIRECT";
  if (ipv6 && shExpMatch(host, "fe9*:*")) return "DIRECT";
  if (ipv6 && shExpMatch(host, "fea*:*")) return "DIRECT";
  if (ipv6 && shExpMatch(host, "feb*:*")) return "DIRECT";
  if (shExpMatch(host, "intranet.example.com")) return "DIRECT";
  if (shExpMatch(host, "*.corp.example")) return "DIRECT";
  if (ipv4 && isInNet(host, "198.51.100.0", "255.255.255.0")) return "DIRECT";
  return proxies;
}
