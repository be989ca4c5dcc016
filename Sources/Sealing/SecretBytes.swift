internal import CSodium

/// Secret bytes in libsodium's guarded memory: `sodium_malloc` places the
/// buffer between guard pages and locks it out of swap; `sodium_free` zeroes
/// it. The type cannot be copied, so a secret has exactly one owner, and its
/// bytes are reachable only inside `withUnsafeBytes`: they never pass through
/// a Swift `Array`, `Data` or `String`, whose copies nobody could wipe.
public struct SecretBytes: ~Copyable {
    // safety: owned exclusively by this value, released exactly once in deinit.
    /// What sodium_malloc returned: a reused slot (GuardedSlots) or an
    /// allocation of this secret's own.
    private let allocation: UnsafeMutableRawPointer
    private let pooled: Bool
    private let base: UnsafeMutableRawPointer
    public let count: Int

    /// `count` zero bytes.
    public init(count: Int) throws(SealingError) {
        precondition(count >= 0, "negative secret length")
        try Sodium.ensureReady()
        // sodium_malloc(0) is legal but returns a pointer into the guard area;
        // one spare byte keeps every pointer we hand out inside the allocation.
        let size = max(count, 1)
        if size <= GuardedSlots.capacity {
            guard let slot = GuardedSlots.take() else { throw .outOfMemory }
            allocation = slot
            pooled = true
            // At the slot's end, as sodium_malloc places a buffer: a write
            // past the secret hits the guard page.
            base = slot + (GuardedSlots.capacity - size)
        } else {
            guard let pointer = sodium_malloc(size) else { throw .outOfMemory }
            sodium_memzero(pointer, size)
            allocation = pointer
            pooled = false
            base = pointer
        }
        self.count = count
    }

    /// A copy of `bytes` into guarded memory. The caller wipes its source.
    public init(copying bytes: UnsafeRawBufferPointer) throws(SealingError) {
        try self.init(count: bytes.count)
        if let source = bytes.baseAddress, bytes.count > 0 {
            base.copyMemory(from: source, byteCount: bytes.count)
        }
    }

    /// `count` bytes from the operating system's CSPRNG.
    public static func random(count: Int) throws(SealingError) -> SecretBytes {
        var secret = try SecretBytes(count: count)
        secret.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
        return secret
    }

    deinit {
        if pooled {
            GuardedSlots.give(allocation)
        } else {
            sodium_free(allocation)
        }
    }

    public func withUnsafeBytes<R: ~Copyable, E: Error>(
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    public mutating func withUnsafeMutableBytes<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        try body(UnsafeMutableRawBufferPointer(start: base, count: count))
    }

    /// Constant-time comparison (`sodium_memcmp`); only the lengths, which are
    /// not secret, are compared in variable time.
    public func constantTimeEquals(_ other: borrowing SecretBytes) -> Bool {
        guard count == other.count else { return false }
        if count == 0 { return true }
        return other.withUnsafeBytes { theirs in
            sodium_memcmp(base, theirs.baseAddress!, count) == 0
        }
    }

    /// The first `length` bytes, in a new guarded buffer of exactly that size.
    public func prefix(_ length: Int) throws(SealingError) -> SecretBytes {
        precondition(length >= 0 && length <= count, "prefix out of range")
        return try SecretBytes(copying: UnsafeRawBufferPointer(start: base, count: length))
    }

    /// Whether any byte is one of `bytes`; used to refuse CR, LF and NUL.
    public func containsAny(of bytes: Set<UInt8>) -> Bool {
        UnsafeRawBufferPointer(start: base, count: count).contains(where: bytes.contains)
    }
}
