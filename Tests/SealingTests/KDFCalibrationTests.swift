import Testing
@testable import Sealing

/// The scaling of `--kdf calibrate`: pure arithmetic from two probe times,
/// a target and bounds to a pass count. No clock is read here.
@Suite struct KDFCalibrationTests {
    static func ms(_ value: Int) -> Duration { .milliseconds(value) }
    static func probe(_ one: Int, _ two: Int) -> KDFCalibration.Probe {
        KDFCalibration.Probe(onePass: ms(one), twoPasses: ms(two))
    }

    @Test("libsodium's minimum and keyseal's cap bound the passes; the memory is moderate's")
    func bounds() {
        #expect(KDFCalibration.opsLimitBounds == 1...32)
        #expect(KDFCalibration.memLimit == 256 << 20)
        #expect(KDFCalibration.memLimit == KDFParameters.moderate.memLimit)
        // A calibrated slot is always one keyseal accepts.
        for passes in [KDFCalibration.opsLimitBounds.lowerBound, KDFCalibration.opsLimitBounds.upperBound] {
            #expect(throws: Never.self) { try KDFParameters(opsLimit: passes, memLimit: KDFCalibration.memLimit).validate() }
        }
    }

    @Test("a fixed cost and a cost per pass are read from the two probes")
    func probeLine() {
        // As measured here at 256 MiB: 0.21 s for one pass, 0.33 s for two.
        let here = Self.probe(210, 330)
        #expect(here.perPass == Self.ms(120))
        #expect(here.fixed == Self.ms(90))
        #expect(here.estimate(passes: 8) == Self.ms(1050))
        // Noise that makes the second pass look free, or dearer than the
        // first, is held between half of one pass and all of it.
        #expect(Self.probe(200, 210).perPass == Self.ms(100))
        #expect(Self.probe(200, 200).fixed == Self.ms(100))
        #expect(Self.probe(200, 150).perPass == Self.ms(100))
        #expect(Self.probe(200, 900).perPass == Self.ms(200))
        #expect(Self.probe(200, 900).fixed == .zero)
    }

    @Test("passes scale with the target, rounded to the nearest", arguments: [
        // (one pass ms, two passes ms, target ms, passes)
        (210, 330, 1000, 8),     // (1000 - 90) / 120 = 7.6
        (210, 330, 2000, 16),    // 15.9
        (210, 330, 500, 3),      // 3.4
        (210, 330, 270, 2),      // 1.5 rounds up
        (200, 400, 1000, 5),     // no fixed cost: plain proportion
        (200, 400, 1099, 5),
        (200, 400, 1100, 6),
        (100, 200, 3200, 32),    // exactly the cap
    ])
    func scales(_ one: Int, _ two: Int, _ target: Int, _ passes: UInt64) {
        let scaled = KDFCalibration.scale(probe: Self.probe(one, two), target: Self.ms(target), bounds: 1...32)
        #expect(scaled == KDFCalibration.Scaled(opsLimit: passes, bound: .none))
    }

    @Test("below one pass: the minimum, and said so")
    func minimum() {
        for target in [100, 130, 30] {
            // (130 - 90) / 120 = 0.33 rounds to 0; 30 ms is less than the fixed cost.
            let scaled = KDFCalibration.scale(probe: Self.probe(210, 330), target: Self.ms(target), bounds: 1...32)
            #expect(scaled == KDFCalibration.Scaled(opsLimit: 1, bound: .minimum), "target \(target) ms")
        }
        // Another floor is kept as given.
        #expect(KDFCalibration.scale(probe: Self.probe(210, 330), target: Self.ms(500), bounds: 4...32)
                == KDFCalibration.Scaled(opsLimit: 4, bound: .minimum))
    }

    @Test("above the cap: the cap, and said so")
    func cap() {
        let slow = KDFCalibration.scale(probe: Self.probe(210, 330), target: .seconds(60), bounds: 1...32)
        #expect(slow == KDFCalibration.Scaled(opsLimit: 32, bound: .cap))
        // 3250 ms on a 100 ms pass is 32.5, which rounds to 33.
        #expect(KDFCalibration.scale(probe: Self.probe(100, 200), target: Self.ms(3250), bounds: 1...32)
                == KDFCalibration.Scaled(opsLimit: 32, bound: .cap))
        // A clock that saw no time at all: the most passes, not a division by zero.
        #expect(KDFCalibration.scale(probe: Self.probe(0, 0), target: .seconds(1), bounds: 1...32)
                == KDFCalibration.Scaled(opsLimit: 32, bound: .cap))
    }

    @Test("a longer target never gives fewer passes")
    func monotonic() {
        for probe in [Self.probe(210, 330), Self.probe(50, 60), Self.probe(900, 2500), Self.probe(1, 2)] {
            var last: UInt64 = 0
            for target in stride(from: 100, through: 60_000, by: 37) {
                let passes = KDFCalibration.scale(probe: probe, target: Self.ms(target), bounds: 1...32).opsLimit
                #expect(passes >= last, "\(probe) at \(target) ms: \(passes) after \(last)")
                #expect((1...32).contains(passes))
                last = passes
            }
        }
    }
}
