/// Which entry serves a request URL, by the entries' base URLs: same scheme,
/// host and port, and a base path that is a prefix of the request's path on
/// a segment boundary (`/org` serves `/org/repo.git`, never `/organisation`).
/// The longest base path wins; two entries with that same base URL are
/// ambiguous, and neither is used.
public enum CredentialMatch: Equatable, Sendable {
    case none
    case one(name: String)
    case ambiguous(names: [String])

    public static func best(for request: ServiceURL, among candidates: [(name: String, url: ServiceURL)]) -> CredentialMatch {
        var best: [String] = []
        var bestLength = -1
        for candidate in candidates where serves(candidate.url, request) {
            let length = candidate.url.path.utf8.count
            if length > bestLength {
                best = [candidate.name]
                bestLength = length
            } else if length == bestLength {
                best.append(candidate.name)
            }
        }
        switch best.count {
        case 0: return .none
        case 1: return .one(name: best[0])
        default: return .ambiguous(names: best.sorted())
        }
    }

    /// Whether a base URL covers a request URL. Paths compare byte for byte
    /// (they are case-sensitive on every forge); scheme and host are already
    /// lowercase and the default port already dropped (ServiceURL).
    public static func serves(_ base: ServiceURL, _ request: ServiceURL) -> Bool {
        guard base.origin == request.origin else { return false }
        return base.path.isEmpty || request.path == base.path || request.path.hasPrefix(base.path + "/")
    }
}
