import ArchonController
import ArgumentParser
import Foundation

/// `archon token`: API token helpers.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "API token helpers.", subcommands: [Hash.self])

    struct Hash: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the SHA-256 of a token read from stdin, for a token's tokenSHA256 in the controller config.",
            discussion: """
                Reads the token from stdin (one line; a trailing newline is not part of it), so it never appears in a \
                process list or shell history. Example: openssl rand -hex 32 > oncall.token; archon token hash < oncall.token
                """)

        func run() throws {
            var text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            if text.hasSuffix("\n") { text.removeLast() }
            if text.hasSuffix("\r") { text.removeLast() }
            guard !text.isEmpty else { throw ValidationError("no token on stdin") }
            guard !text.contains("\n") else { throw ValidationError("stdin holds more than one line: give one token") }
            print(APIToken.hex(APIToken.sha256(of: text)))
        }
    }
}
