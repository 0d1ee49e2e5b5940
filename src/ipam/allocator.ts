// Pure, in-memory allocators for the planners. State is a Set of used offsets plus a cursor below
// which every offset is taken, so memory grows with what is used, never with the size of the range
// (an IPv6 /64 costs the same as an IPv4 /30), and allocation is amortised O(1).
import {
  blockCount,
  type Cidr,
  cidrSize,
  containsCidr,
  containsIp,
  type Family,
  familyName,
  formatCidr,
  formatIp,
  hostBits,
  type IpAddress,
} from "./cidr.js";

export interface AddressAllocatorOptions {
  /** Offset 0 is not handed out. Default: true for prefixes shorter than /31 (IPv4) or /127 (IPv6). */
  reserveNetwork?: boolean;
  /** The last address is not handed out. Default: true for IPv4 prefixes shorter than /31; false for IPv6. */
  reserveBroadcast?: boolean;
  /** Further offsets never handed out (e.g. gateway = 1, DNS = 10); negative counts from the end. */
  reserved?: (bigint | number)[];
  /** Limit automatic allocation to this inclusive range (inside the CIDR); claims may still use all of it. */
  rangeStart?: IpAddress;
  rangeEnd?: IpAddress;
}

function describe(ip: IpAddress): string {
  return `${familyName(ip.family)} address ${formatIp(ip)}`;
}

/** Hands out addresses of one CIDR (or of a sub-range of it), skipping reserved offsets. */
export class AddressAllocator {
  readonly cidr: Cidr;
  private readonly family: Family;
  private readonly network: bigint;
  private readonly size: bigint;
  /** Every offset that is never handed out: network, broadcast and `reserved`. */
  private readonly reservedOffsets = new Set<bigint>();
  private readonly networkReserved: boolean;
  private readonly broadcastReserved: boolean;
  private readonly used = new Set<bigint>();
  /** Automatic allocation covers offsets start..end (inclusive). */
  private readonly start: bigint;
  private readonly end: bigint;
  /** Every offset in start..cursor-1 is used or reserved. */
  private cursor: bigint;
  private readonly cap: bigint;

  constructor(cidr: Cidr, options: AddressAllocatorOptions = {}) {
    this.cidr = { family: cidr.family, network: cidr.network, prefix: cidr.prefix };
    this.family = cidr.family;
    this.network = cidr.network;
    this.size = cidrSize(cidr);
    const where = formatCidr(cidr);
    const pointToPoint = cidr.prefix >= hostBits(cidr.family) - 1; // /31, /32, /127, /128
    this.networkReserved = options.reserveNetwork ?? !pointToPoint;
    this.broadcastReserved = options.reserveBroadcast ?? (cidr.family === 4 && !pointToPoint);
    if (this.networkReserved) this.reservedOffsets.add(0n);
    if (this.broadcastReserved) this.reservedOffsets.add(this.size - 1n);
    for (const r of options.reserved ?? []) {
      if (typeof r === "number" && !Number.isInteger(r)) {
        throw new RangeError(`reserved offset ${r} in ${where} is not a whole number`);
      }
      const offset = BigInt(r);
      const resolved = offset < 0n ? this.size + offset : offset;
      if (resolved < 0n || resolved >= this.size) {
        throw new RangeError(
          `reserved offset ${offset} is outside ${where}, which has ${this.size} addresses (valid offsets 0..${this.size - 1n})`,
        );
      }
      this.reservedOffsets.add(resolved);
    }
    this.start = options.rangeStart ? this.rangeOffset(options.rangeStart, "rangeStart") : 0n;
    this.end = options.rangeEnd ? this.rangeOffset(options.rangeEnd, "rangeEnd") : this.size - 1n;
    if (this.start > this.end) {
      throw new RangeError(
        `rangeStart ${formatIp(this.at(this.start))} is after rangeEnd ${formatIp(this.at(this.end))} in ${where}`,
      );
    }
    this.cursor = this.start;
    let reservedInRange = 0n;
    for (const r of this.reservedOffsets) if (r >= this.start && r <= this.end) reservedInRange++;
    this.cap = this.end - this.start + 1n - reservedInRange;
  }

  private rangeOffset(ip: IpAddress, name: string): bigint {
    if (!containsIp(this.cidr, ip)) {
      throw new RangeError(`${name} ${describe(ip)} is not inside ${formatCidr(this.cidr)}`);
    }
    return ip.value - this.network;
  }

  private at(offset: bigint): IpAddress {
    return { family: this.family, value: this.network + offset };
  }

  /** Offset of ip, or undefined when it is not in the CIDR. */
  private offset(ip: IpAddress): bigint | undefined {
    if (ip.family !== this.family) return undefined;
    const offset = ip.value - this.network;
    return offset >= 0n && offset < this.size ? offset : undefined;
  }

  /**
   * Marks a specific address as used (an explicit or previously allocated address). Returns a reason
   * when it cannot: outside the CIDR, reserved, already used; undefined on success.
   */
  claim(ip: IpAddress): string | undefined {
    const where = formatCidr(this.cidr);
    if (ip.family !== this.family) {
      return `${describe(ip)} cannot be used in the ${familyName(this.family)} range ${where}`;
    }
    const offset = this.offset(ip);
    if (offset === undefined) return `${describe(ip)} is outside ${where}`;
    if (this.reservedOffsets.has(offset)) {
      if (offset === 0n && this.networkReserved) {
        return `${formatIp(ip)} is the network address of ${where} and is reserved`;
      }
      if (offset === this.size - 1n && this.broadcastReserved) {
        return `${formatIp(ip)} is the broadcast address of ${where} and is reserved`;
      }
      return `${formatIp(ip)} is reserved in ${where}`;
    }
    if (this.used.has(offset)) return `${formatIp(ip)} is already in use in ${where}`;
    this.used.add(offset);
    return undefined;
  }

  /** Next free address, lowest first (skipping reserved and claimed), or undefined when exhausted. */
  allocate(): IpAddress | undefined {
    const used = this.used;
    const reserved = this.reservedOffsets;
    const end = this.end;
    let c = this.cursor;
    while (c <= end) {
      if (!used.has(c) && !reserved.has(c)) {
        used.add(c);
        this.cursor = c + 1n;
        return { family: this.family, value: this.network + c };
      }
      c++;
    }
    this.cursor = c;
    return undefined;
  }

  /** Frees an address; the next allocate() hands out the lowest free address again. No-op when not used. */
  release(ip: IpAddress): void {
    const offset = this.offset(ip);
    if (offset === undefined || !this.used.delete(offset)) return;
    if (offset >= this.start && offset < this.cursor) this.cursor = offset;
  }

  /** True when the address was claimed or allocated (reserved addresses are not "used"; see isReserved). */
  isUsed(ip: IpAddress): boolean {
    const offset = this.offset(ip);
    return offset !== undefined && this.used.has(offset);
  }

  /** True when the address is never handed out: network, broadcast or a reserved offset. */
  isReserved(ip: IpAddress): boolean {
    const offset = this.offset(ip);
    return offset !== undefined && this.reservedOffsets.has(offset);
  }

  /** How many addresses automatic allocation can hand out in total (excluding reserved). */
  capacity(): bigint {
    return this.cap;
  }

  /** Addresses claimed or allocated (including claims outside rangeStart..rangeEnd). */
  usedCount(): number {
    return this.used.size;
  }
}

/** Hands out fixed-size blocks (e.g. each node's /24 pod block) of a larger CIDR, lowest first. */
export class BlockAllocator {
  readonly cidr: Cidr;
  readonly blockPrefix: number;
  private readonly shift: bigint;
  private readonly count: bigint;
  /** Indexes of used blocks. */
  private readonly used = new Set<bigint>();
  /** Every block index below the cursor is used. */
  private cursor = 0n;

  constructor(cidr: Cidr, blockPrefix: number) {
    this.cidr = { family: cidr.family, network: cidr.network, prefix: cidr.prefix };
    this.count = blockCount(cidr, blockPrefix); // throws when blockPrefix does not fit
    this.blockPrefix = blockPrefix;
    this.shift = BigInt(hostBits(cidr.family) - blockPrefix);
  }

  /** Index of the block, or a reason why it is not one of this allocator's blocks. */
  private indexOf(block: Cidr): bigint | string {
    const where = formatCidr(this.cidr);
    if (block.family !== this.cidr.family) {
      return `${familyName(block.family)} block ${formatCidr(block)} cannot be used in the ${familyName(this.cidr.family)} range ${where}`;
    }
    if (!containsCidr(this.cidr, block)) return `${formatCidr(block)} is not inside ${where}`;
    if (block.prefix !== this.blockPrefix) {
      return `${formatCidr(block)} is a /${block.prefix} but blocks of ${where} are /${this.blockPrefix}`;
    }
    return (block.network - this.cidr.network) >> this.shift;
  }

  /** Marks a block as used. Returns a reason when it is not inside, has the wrong size or is already used. */
  claim(block: Cidr): string | undefined {
    const index = this.indexOf(block);
    if (typeof index === "string") return index;
    if (this.used.has(index)) return `${formatCidr(block)} is already in use in ${formatCidr(this.cidr)}`;
    this.used.add(index);
    return undefined;
  }

  /** The lowest free block, or undefined when all are used. */
  allocate(): Cidr | undefined {
    const used = this.used;
    let c = this.cursor;
    while (c < this.count) {
      if (!used.has(c)) {
        used.add(c);
        this.cursor = c + 1n;
        return {
          family: this.cidr.family,
          network: this.cidr.network + (c << this.shift),
          prefix: this.blockPrefix,
        };
      }
      c++;
    }
    this.cursor = c;
    return undefined;
  }

  /** Frees a block; no-op when it is not a used block of this allocator. */
  release(block: Cidr): void {
    const index = this.indexOf(block);
    if (typeof index === "string" || !this.used.delete(index)) return;
    if (index < this.cursor) this.cursor = index;
  }

  isUsed(block: Cidr): boolean {
    const index = this.indexOf(block);
    return typeof index !== "string" && this.used.has(index);
  }

  /** Number of blocks in the CIDR. */
  capacity(): bigint {
    return this.count;
  }

  usedCount(): number {
    return this.used.size;
  }
}
