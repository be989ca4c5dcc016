internal import CSodium

/// Public randomness: identifiers, salts and nonces, which are stored in the
/// clear and so may live in ordinary arrays.
public enum Random {
    public static func bytes(_ count: Int) throws(SealingError) -> [UInt8] {
        try Sodium.ensureReady()
        var out = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return out }
        out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
        return out
    }
}
