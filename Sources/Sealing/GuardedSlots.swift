internal import CSodium
import Synchronization

/// A small cache of one-page guarded allocations for short secrets.
///
/// `sodium_malloc` and `sodium_free` cost about 26 µs a pair on the machine
/// keyseal is measured on (an mmap, three mprotects, madvise and mlock, then
/// the reverse; a C loop, docs/PERFORMANCE.md), and `keyseal header` through
/// the agent made about ten of them on each side of the socket. A released slot is
/// zeroed at once and kept, still guarded and locked, for the next secret
/// that fits, so a secret's memory is as guarded as before and nothing it
/// held outlives its owner.
enum GuardedSlots {
    /// Bytes a slot holds: one page, less room for libsodium's 16-byte
    /// canary (it shares the page) and some to spare.
    static let capacity = 4096 - 64
    /// Slots kept for reuse; more are freed.
    static let kept = 16

    /// Addresses, as pointers are not Sendable; each is a slot only this
    /// cache refers to.
    private static let free = Mutex<[UInt]>([])

    /// A zeroed slot, or nil when `sodium_malloc` fails.
    static func take() -> UnsafeMutableRawPointer? {
        if let address = free.withLock({ $0.popLast() }) { return UnsafeMutableRawPointer(bitPattern: address) }
        guard let slot = sodium_malloc(capacity) else { return nil }
        sodium_memzero(slot, capacity)
        return slot
    }

    /// Zeroes the slot, then keeps or frees it.
    static func give(_ slot: UnsafeMutableRawPointer) {
        sodium_memzero(slot, capacity)
        let address = UInt(bitPattern: slot)
        let keptIt = free.withLock { slots -> Bool in
            guard slots.count < kept else { return false }
            slots.append(address)
            return true
        }
        if !keptIt { sodium_free(slot) }
    }
}
