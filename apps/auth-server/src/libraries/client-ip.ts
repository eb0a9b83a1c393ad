import { isIPv6 } from "node:net";

/**
 * The client address as counted by the request limits (http/rate-limit.ts) and the failed sign-in throttling
 * (libraries/throttle/): IPv4 as is (lower-cased), an IPv4-mapped IPv6 address as its IPv4 address, any other IPv6
 * address as the start of its /64 (the smallest block one customer usually gets), in RFC 5952 text form.
 *
 * The same strings as @fastify/rate-limit's `normalizeIP(ip)` (ip-address's `correctForm()`), which Tessera used
 * before: stored IP suspensions keep matching. Written here so `libraries/` does not import a Fastify plugin.
 */
export function ipBlock(ip: string): string {
  if (!isIPv6(ip)) return ip.toLowerCase();
  const groups = ipv6Groups(ip);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi = 0, lo = 0] = groups.slice(6);
    return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join(".");
  }
  return rfc5952([...groups.slice(0, 4), 0, 0, 0, 0]);
}

/** The eight 16-bit groups of a valid IPv6 address (an embedded dotted IPv4 tail and a zone index allowed). */
function ipv6Groups(ip: string): number[] {
  let address = ip.split("%")[0] ?? ip;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    address = `${address.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = address.split("::");
  const parse = (part: string) => (part ? part.split(":").map((g) => Number.parseInt(g, 16)) : []);
  const left = parse(head);
  if (tail === undefined) return left;
  const right = parse(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** RFC 5952: lower-case hex without leading zeros, the first longest run of two or more zero groups as `::`. */
function rfc5952(groups: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}
