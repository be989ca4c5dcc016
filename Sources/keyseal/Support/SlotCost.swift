import ArgumentParser
import Sealing

/// `--kdf` of `init` and `passwd`: a preset, or `calibrate` (passes chosen
/// on this machine for `--kdf-time`). `export` keeps to the presets: its file
/// is opened on another machine, whose speed this one cannot measure.
enum SlotKDF: ExpressibleByArgument, Equatable {
    case preset(KDFPreset)
    case calibrate

    init?(argument: String) {
        if argument == "calibrate" {
            self = .calibrate
        } else if let preset = KDFPreset(argument: argument) {
            self = .preset(preset)
        } else {
            return nil
        }
    }

    static var allValueStrings: [String] { KDFPreset.allValueStrings + ["calibrate"] }

    /// As a CaseIterable enum's: the shells offer the values.
    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }

    var defaultValueDescription: String {
        switch self {
        case let .preset(preset): preset.rawValue
        case .calibrate: "calibrate"
        }
    }
}

/// The cost of a new passphrase slot, checked before anything is read or
/// unlocked: a preset's fixed costs, or a target time to calibrate for.
enum SlotCost {
    case preset(KDFPreset, KDFParameters)
    case calibrate(target: Duration)

    /// `--kdf-time` goes only with `--kdf calibrate`, and only within
    /// 100 ms to 60 s; both are usage errors (exit 64).
    static func resolve(kdf: SlotKDF, time: String?) throws -> SlotCost {
        switch kdf {
        case let .preset(preset):
            if time != nil {
                throw CLIError(.usage, "--kdf-time needs --kdf calibrate",
                               hint: "add --kdf calibrate, or leave --kdf-time out for the \(preset.rawValue) preset")
            }
            return .preset(preset, try preset.parameters())
        case .calibrate:
            return .calibrate(target: try time.map(KDFTime.parse) ?? KDFCalibration.defaultTarget)
        }
    }

    /// The costs to store, and how to name them to the user. Calibrating
    /// runs Argon2id twice (one pass, two passes) over a throw-away
    /// password: call it after the passphrase is read, so the prompts come
    /// without a pause.
    func parameters() throws -> (parameters: KDFParameters, description: String) {
        switch self {
        case let .preset(preset, parameters):
            return (parameters, "Argon2id \(preset.rawValue)")
        case let .calibrate(target):
            let choice = try KDFCalibration.calibrate(target: target)
            return (choice.parameters, Self.describe(choice, target: target))
        }
    }

    /// `Argon2id calibrated: 3 passes, 256 MiB, about 1.0 s here`, and, when
    /// a bound moved the passes, which one.
    static func describe(_ choice: KDFCalibration.Choice, target: Duration) -> String {
        let passes = choice.parameters.opsLimit
        var text = "Argon2id calibrated: \(passes) \(passes == 1 ? "pass" : "passes"), "
            + "\(choice.parameters.memLimit >> 20) MiB, about \(KDFTime.describeSeconds(choice.estimate)) here"
        switch choice.bound {
        case .none: break
        case .minimum: text += "; one pass is the least, and takes longer than the \(KDFTime.describe(target)) asked"
        case .cap: text += "; \(passes) passes is the most keyseal accepts, short of the \(KDFTime.describe(target)) asked"
        }
        return text
    }
}

/// `--kdf-time`: a number (a decimal point allowed) and `ms` or `s`.
enum KDFTime {
    static let hint = "give 100ms to 60s, for example 500ms, 1s or 2s"

    static func parse(_ text: String) throws -> Duration {
        let trimmed = text.filter { $0 != " " }.lowercased()
        let number = trimmed.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let unit = trimmed.dropFirst(number.count)
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        let scale: Double? = switch unit {
        case "ms": 1
        case "s": 1000
        default: nil
        }
        guard let scale, (1...2).contains(parts.count), !parts[0].isEmpty, parts.allSatisfy({ !$0.isEmpty }),
              number.count <= 12, let value = Double(number)
        else {
            throw CLIError(.usage, "\(text.debugDescription) is not a time for --kdf-time", hint: hint)
        }
        let target = Duration.milliseconds(value * scale)
        guard KDFCalibration.targetRange.contains(target) else {
            throw CLIError(.usage, "--kdf-time \(text) is out of range", hint: hint)
        }
        return target
    }

    /// 500 ms, 1 s, 1.5 s: as a person would write the target back.
    static func describe(_ duration: Duration) -> String {
        let milliseconds = milliseconds(duration)
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        return "\(Double(milliseconds) / 1000) s"
    }

    /// Seconds with one decimal: 1.0 s, 0.4 s, 9.6 s.
    static func describeSeconds(_ duration: Duration) -> String {
        let tenths = (milliseconds(duration) + 50) / 100
        return "\(tenths / 10).\(tenths % 10) s"
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
