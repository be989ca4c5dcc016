import ArgumentParser
import Policy
import Sealing
import Storage

struct Calendar: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calendar",
        abstract: "Print an iCalendar file with one event per expiry (no passphrase needed).",
        discussion: """
            keyseal calendar > tokens.ics, then import it into a calendar. Each \
            event has a stable UID (the entry's id), so importing again updates \
            events instead of duplicating them, and an alarm --alarm before the \
            expiry (default: the entry's warning window).
            """)

    @OptionGroup var vaultOptions: VaultOptions

    @Option(help: ArgumentHelp("Only entries that expire within this duration (7d, 3mo); default: all.", valueName: "duration"))
    var within: String?

    @Option(help: ArgumentHelp("When the alarm rings before the expiry: 7d, 36h (default: the warning window).", valueName: "duration"))
    var alarm: String?

    func run() throws {
        try Failure.report {
            let vault = try vaultOptions.open()
            let report = ExpiryReport(vault: vault)
            let limit = try within.map { try WindowInput.parse($0, policy: report.policy) }
            let alarmBefore = try alarm.map { try WindowInput.parse($0, policy: report.policy) }
            let vaultWindow = try report.vaultWindow()
            var events: [ICalendar.Event] = []
            for entry in try vault.entries() {
                guard let expiresAt = entry.fields.expiresAt else { continue }
                if let limit, expiresAt - report.policy.now > limit { continue }
                var description = "keyseal entry \(entry.name) (\(entry.fields.kind))"
                if !entry.fields.description.isEmpty { description += ": \(entry.fields.description)" }
                description += ".\nRenew it, then: keyseal rotate \(ShellQuote.quote(entry.name)) --expires 90d"
                events.append(ICalendar.Event(
                    uid: "\(Hex.encode(entry.id))@keyseal",
                    sequence: entry.revision,
                    start: expiresAt,
                    summary: "\(entry.name) expires",
                    description: description,
                    alarmBefore: alarmBefore ?? entry.warnWithin ?? vaultWindow ?? ExpiryPolicy.defaultWindow))
            }
            try Output.data(ICalendar.render(events, stamp: report.policy.now, productVersion: Keyseal.version))
        }
    }
}

/// RFC 5545 output: CRLF line ends, lines folded at 75 octets, TEXT values
/// escaped.
enum ICalendar {
    struct Event {
        let uid: String
        let sequence: Int64
        let start: Int64
        let summary: String
        let description: String
        let alarmBefore: Int64
    }

    static func render(_ events: [Event], stamp: Int64, productVersion: String) -> String {
        var lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//keyseal//keyseal \(productVersion)//EN",
                     "CALSCALE:GREGORIAN", "METHOD:PUBLISH"]
        for event in events {
            lines += [
                "BEGIN:VEVENT",
                "UID:\(text(event.uid))",
                "SEQUENCE:\(event.sequence)",
                "DTSTAMP:\(dateTime(stamp))",
                // No DTEND: an expiry is a moment, and RFC 5545 wants DTEND
                // later than DTSTART; without it the event ends as it starts.
                "DTSTART:\(dateTime(event.start))",
                "SUMMARY:\(text(event.summary))",
                "DESCRIPTION:\(text(event.description))",
                "TRANSP:TRANSPARENT",
                "BEGIN:VALARM",
                "ACTION:DISPLAY",
                "DESCRIPTION:\(text(event.summary))",
                "TRIGGER:-\(duration(event.alarmBefore))",
                "END:VALARM",
                "END:VEVENT",
            ]
        }
        lines.append("END:VCALENDAR")
        return lines.map(fold).joined(separator: "\r\n") + "\r\n"
    }

    /// 20270131T235959Z
    static func dateTime(_ seconds: Int64) -> String {
        Timestamp.iso8601(seconds).filter { $0 != "-" && $0 != ":" }
    }

    /// P7D, P1DT12H, PT90S: a dur-value of RFC 5545 section 3.3.6.
    static func duration(_ seconds: Int64) -> String {
        let days = seconds / 86_400, hours = seconds % 86_400 / 3600
        let minutes = seconds % 3600 / 60, rest = seconds % 60
        var time = ""
        if hours > 0 { time += "\(hours)H" }
        if minutes > 0 { time += "\(minutes)M" }
        if rest > 0 { time += "\(rest)S" }
        if days == 0 && time.isEmpty { return "PT0S" }
        return "P" + (days > 0 ? "\(days)D" : "") + (time.isEmpty ? "" : "T" + time)
    }

    /// TEXT escaping (section 3.3.11): backslash, semicolon, comma, and line
    /// breaks (LF, CR, CR LF) as \n. Other control characters, which keyseal
    /// never stores but an edited file could hold, become U+FFFD, so no value
    /// can start a line of its own.
    static func text(_ value: String) -> String {
        var out = ""
        var previousWasCR = false
        for scalar in value.unicodeScalars {
            defer { previousWasCR = scalar == "\r" }
            switch scalar {
            case "\\": out += "\\\\"
            case ";": out += "\\;"
            case ",": out += "\\,"
            case "\r": out += "\\n"
            case "\n": if !previousWasCR { out += "\\n" }
            case _ where scalar.properties.generalCategory == .control
                || scalar.properties.generalCategory == .lineSeparator
                || scalar.properties.generalCategory == .paragraphSeparator:
                out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Folds a content line into pieces of at most 75 octets, never inside a
    /// UTF-8 sequence; continuation lines start with a space (section 3.1).
    static func fold(_ line: String) -> String {
        var pieces: [String] = []
        var current = ""
        var currentOctets = 0
        for scalar in line.unicodeScalars {
            let octets = String(scalar).utf8.count
            let limit = pieces.isEmpty ? 75 : 74  // the leading space counts
            if currentOctets + octets > limit {
                pieces.append(current)
                current = ""
                currentOctets = 0
            }
            current.unicodeScalars.append(scalar)
            currentOctets += octets
        }
        pieces.append(current)
        return pieces.joined(separator: "\r\n ")
    }

}
