/// The kinds of credential keyseal knows, and how each is sent by default.
/// Pure data: no I/O, nothing of ours imported.
public enum CredentialKind: String, CaseIterable, Sendable {
    /// Sent as it is: Immuta's API key method, `Authorization: <key>`.
    case apiKey = "api-key"
    /// A personal access token: `Authorization: Bearer <pat>`.
    case pat
    /// Any bearer token stored as it is.
    case token
    /// An API key exchanged for bearer tokens (Immuta's
    /// /bim/apikey/authenticate); the token is what is sent.
    case bearer

    public static let secretPlaceholder = "{secret}"

    public var defaultHeaderTemplate: String {
        switch self {
        case .apiKey: "Authorization: {secret}"
        case .pat, .token, .bearer: "Authorization: Bearer {secret}"
        }
    }

    /// Kinds a user can store today.
    public static let storable: [CredentialKind] = [.apiKey, .pat, .token, .bearer]
}
