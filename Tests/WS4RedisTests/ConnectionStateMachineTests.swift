import XCTest

@testable import WS4RedisProtocol

/// The close handshake and liveness decisions on their own (no event loop: the machine does no I/O).
final class ConnectionStateMachineTests: XCTestCase {
    private var machine = ConnectionStateMachine()

    func testANewConnectionIsOpenAndMaySendData() {
        XCTAssertEqual(machine.state, .open)
        XCTAssertTrue(machine.canSendData)
    }

    // MARK: closed by the peer

    func testAPeerCloseIsEchoedWithItsCodeAndClosesAtOnce() {
        XCTAssertEqual(machine.receivedClose(.goingAway), .replyAndClose(.goingAway))
        XCTAssertEqual(machine.state, .closed)
        XCTAssertFalse(machine.canSendData)
    }

    func testAPeerCloseWithoutACodeIsAnsweredWithNormalClosure() {
        XCTAssertEqual(machine.receivedClose(nil), .replyAndClose(.normalClosure))
    }

    func testASecondPeerCloseIsIgnored() {
        _ = machine.receivedClose(.normalClosure)
        XCTAssertEqual(machine.receivedClose(.normalClosure), .ignore)
        XCTAssertEqual(machine.state, .closed)
    }

    func testWeDoNotStartClosingAfterThePeerClosed() {
        _ = machine.receivedClose(.normalClosure)
        XCTAssertFalse(machine.startClosing(), "our close frame would follow the one that ended the handshake")
        XCTAssertEqual(machine.state, .closed)
    }

    // MARK: closed by us

    func testClosingSendsOneCloseFrameAndStopsData() {
        XCTAssertTrue(machine.startClosing())
        XCTAssertEqual(machine.state, .closing)
        XCTAssertFalse(machine.canSendData)
    }

    func testASecondCloseOfOursSendsNothing() {
        _ = machine.startClosing()
        XCTAssertFalse(machine.startClosing())
        XCTAssertEqual(machine.state, .closing)
    }

    func testThePeersEchoOfOurCloseEndsTheHandshakeWithoutAReply() {
        _ = machine.startClosing()
        XCTAssertEqual(machine.receivedClose(.normalClosure), .closeSocket)
        XCTAssertEqual(machine.state, .closed)
        XCTAssertEqual(machine.receivedClose(nil), .ignore, "a close after the handshake ended")
    }

    func testAnEchoWithoutACodeEndsTheHandshakeToo() {
        _ = machine.startClosing()
        XCTAssertEqual(machine.receivedClose(nil), .closeSocket)
    }

    // MARK: protocol failures

    func testAFailureWhileOpenSendsACloseFrame() {
        XCTAssertTrue(machine.fail())
        XCTAssertEqual(machine.state, .closed)
        XCTAssertFalse(machine.canSendData)
    }

    func testAFailureWhileClosingSendsNoSecondCloseFrame() {
        _ = machine.startClosing()
        XCTAssertFalse(machine.fail())
        XCTAssertEqual(machine.state, .closed)
    }

    func testAFailureAfterTheCloseSendsNothing() {
        _ = machine.receivedClose(.normalClosure)
        XCTAssertFalse(machine.fail())
        XCTAssertFalse(machine.fail())
        XCTAssertEqual(machine.state, .closed)
    }

    func testAfterAFailureNoCloseIsStartedOrAnswered() {
        _ = machine.fail()
        XCTAssertFalse(machine.startClosing())
        XCTAssertEqual(machine.receivedClose(.normalClosure), .ignore)
    }

    // MARK: liveness

    func testAQuietClientIsPingedOneTickLaterAndDroppedTheTickAfter() {
        XCTAssertEqual(machine.livenessTick(), .none, "the open connection counts as traffic")
        XCTAssertEqual(machine.livenessTick(), .sendPing)
        XCTAssertEqual(machine.livenessTick(), .closeDead)
    }

    func testTrafficBetweenTicksMeansNoPing() {
        for _ in 0..<3 {
            XCTAssertEqual(machine.livenessTick(), .none)
            machine.receivedTraffic()
        }
    }

    func testAnAnswerToThePingKeepsTheClientAndStartsOver() {
        _ = machine.livenessTick()
        XCTAssertEqual(machine.livenessTick(), .sendPing)
        machine.receivedTraffic()
        XCTAssertEqual(machine.livenessTick(), .none)
        XCTAssertEqual(machine.livenessTick(), .sendPing)
    }

    func testNoPingsOnceClosing() {
        _ = machine.livenessTick()
        XCTAssertEqual(machine.livenessTick(), .sendPing)
        _ = machine.startClosing()
        XCTAssertEqual(machine.livenessTick(), .none, "the close timeout takes over from the unanswered ping")
        XCTAssertEqual(machine.livenessTick(), .none)
    }

    func testNoPingsOnceClosed() {
        _ = machine.livenessTick()
        _ = machine.receivedClose(nil)
        XCTAssertEqual(machine.livenessTick(), .none)
        XCTAssertEqual(machine.livenessTick(), .none)
    }
}
