// The libFuzzer entry point, compiled only by scripts/fuzz (with
// Tests/FuzzTests/FuzzTargets.swift): KEYSEAL_FUZZ_TARGET names the target.
import Foundation

private let target: (UnsafeRawBufferPointer) -> Void = {
    let name = ProcessInfo.processInfo.environment["KEYSEAL_FUZZ_TARGET"] ?? ""
    guard let run = FuzzTargets.named(name) else {
        fatalError("KEYSEAL_FUZZ_TARGET=\(name.debugDescription) names no target; try: \(FuzzTargets.all.map(\.name))")
    }
    return run
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    target(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
