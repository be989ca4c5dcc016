internal import CSodium

/// Chooses Argon2id's pass count (opslimit) so that one derivation takes a
/// target time on this machine, as KeePassXC's "decryption time" does
/// (`keyseal init --kdf calibrate`). The memory cost stays fixed: it is what
/// makes each guess expensive on a GPU, and a fixed figure keeps the memory
/// an unlock needs predictable; only the passes follow the machine's speed.
/// The result is an ordinary pair of costs, stored as any preset's.
public enum KDFCalibration {
    /// The moderate preset's 256 MiB (the default cost's memory).
    public static let memLimit: UInt64 = KDFParameters.moderate.memLimit

    /// From libsodium's minimum for Argon2id (crypto_pwhash_OPSLIMIT_MIN, one
    /// pass) to the most keyseal accepts in a slot (`opsLimitRange`), so a
    /// calibrated vault always opens where any other does.
    public static let opsLimitBounds: ClosedRange<UInt64> =
        max(UInt64(crypto_pwhash_argon2id_opslimit_min()), KDFParameters.opsLimitRange.lowerBound)
        ... min(UInt64(crypto_pwhash_argon2id_opslimit_max()), KDFParameters.opsLimitRange.upperBound)

    /// The targets a user may ask for.
    public static let targetRange: ClosedRange<Duration> = .milliseconds(100) ... .seconds(60)
    public static let defaultTarget: Duration = .seconds(1)

    /// Which bound, if any, moved the pass count away from the target's.
    public enum Bound: Equatable, Sendable {
        case none
        /// One pass already takes longer than the target.
        case minimum
        /// The target needs more passes than keyseal accepts in a slot.
        case cap
    }

    /// Two timed derivations over the same memory: one pass, and two. One
    /// pass is not enough to scale from: here about 0.09 s of the 0.21 s it
    /// takes at 256 MiB is allocating and first touching the memory, which
    /// more passes do not repeat, so scaling it alone would give some 60% of
    /// the target.
    public struct Probe: Equatable, Sendable {
        public let onePass: Duration
        public let twoPasses: Duration

        public init(onePass: Duration, twoPasses: Duration) {
            self.onePass = onePass
            self.twoPasses = twoPasses
        }

        /// The time of one more pass: the difference of the two, kept
        /// between half of `onePass` and all of it, so a noisy machine (a
        /// probe slowed by another process) cannot make it tiny, and the
        /// chosen passes many times too many.
        public var perPass: Duration {
            min(max(twoPasses - onePass, onePass / 2), onePass)
        }

        /// What every derivation pays once, whatever its passes.
        public var fixed: Duration { onePass - perPass }

        /// The time `passes` passes should take: a straight line.
        public func estimate(passes: UInt64) -> Duration { fixed + perPass * Int(passes) }
    }

    public struct Scaled: Equatable, Sendable {
        public let opsLimit: UInt64
        public let bound: Bound

        public init(opsLimit: UInt64, bound: Bound) {
            self.opsLimit = opsLimit
            self.bound = bound
        }
    }

    /// The pass count for `target`: the probe's straight line solved for the
    /// target, rounded to the nearest pass, then kept within `bounds`.
    public static func scale(probe: Probe, target: Duration, bounds: ClosedRange<UInt64>) -> Scaled {
        // A probe can take no time only on a broken clock: the most passes is
        // then the safe answer, as the slower unlock is.
        guard probe.onePass > .zero else { return Scaled(opsLimit: bounds.upperBound, bound: .cap) }
        let wanted = ((target - probe.fixed) / probe.perPass).rounded()
        // `!(>=)` also catches NaN.
        if !(wanted >= Double(bounds.lowerBound)) { return Scaled(opsLimit: bounds.lowerBound, bound: .minimum) }
        if wanted > Double(bounds.upperBound) { return Scaled(opsLimit: bounds.upperBound, bound: .cap) }
        return Scaled(opsLimit: UInt64(wanted), bound: .none)
    }

    /// Times Argon2id over `memLimit` bytes at one pass, then at two, with a
    /// random throw-away password and salt: never the user's passphrase.
    /// Each derived key is discarded (freed, so wiped) at once.
    public static func probe(memLimit: UInt64) throws(SealingError) -> Probe {
        let password = try SecretBytes.random(count: 32)
        let salt = try Random.bytes(KeyDerivation.saltLength)
        let clock = ContinuousClock()
        var times: [Duration] = []
        for passes: UInt64 in [1, 2] {
            let parameters = KDFParameters(opsLimit: passes, memLimit: memLimit)
            let start = clock.now
            _ = try KeyDerivation.deriveKey(passphrase: password, salt: salt, parameters: parameters)
            times.append(clock.now - start)
        }
        return Probe(onePass: times[0], twoPasses: times[1])
    }

    public struct Choice: Equatable, Sendable {
        public let parameters: KDFParameters
        public let bound: Bound
        /// What one unlock should take here.
        public let estimate: Duration
    }

    /// Probes this machine, then scales. The real key is derived later, once,
    /// by whoever stores the slot, with `parameters`.
    public static func calibrate(target: Duration, memLimit: UInt64 = memLimit) throws(SealingError) -> Choice {
        let probe = try probe(memLimit: memLimit)
        let scaled = scale(probe: probe, target: target, bounds: opsLimitBounds)
        return Choice(parameters: KDFParameters(opsLimit: scaled.opsLimit, memLimit: memLimit),
                      bound: scaled.bound, estimate: probe.estimate(passes: scaled.opsLimit))
    }
}
