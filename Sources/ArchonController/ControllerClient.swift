public import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A client of the controller's HTTP API, for the CLI and `archon dev`'s scenarios.
public struct ControllerClient: Sendable {
    public let base: String
    public let token: String

    public init(base: String, token: String) {
        self.base = base
        self.token = token
    }

    public struct Failure: Error, CustomStringConvertible {
        /// HTTP status, 0 when the controller could not be reached.
        public let status: Int
        public let description: String
        /// The answer's body (the API's error JSON), empty when there was none.
        public var body = Data()
    }

    /// The response body; throws with the API's own error message on a non-2xx answer.
    public func call(_ method: String, _ path: String, body: Data? = nil, contentType: String = "application/json") async throws -> Data {
        guard let url = URL(string: base.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path) else {
            throw Failure(status: 0, description: "bad API URL \(base)")
        }
        var request = URLRequest(url: url, timeoutInterval: 30)
        request.httpMethod = method
        if !token.isEmpty { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = body
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw Failure(status: 0, description: "cannot reach the controller at \(base): \(error.localizedDescription) (set --api or ARCHON_API)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            var message = object?["error"] as? String ?? String(decoding: data, as: UTF8.self)
            if let details = object?["details"] as? [String], !details.isEmpty {
                message += "\n" + details.map { "  - \($0)" }.joined(separator: "\n")
            }
            throw Failure(status: status, description: "HTTP \(status): \(message)", body: data)
        }
        return data
    }

    public func get<T: Decodable>(_ path: String, as type: T.Type) async throws -> T {
        try decode(try await call("GET", path), as: type)
    }

    public func decode<T: Decodable>(_ data: Data, as type: T.Type) throws -> T {
        do {
            return try JSONDecoder.archon.decode(type, from: data)
        } catch {
            throw Failure(status: 0, description: "unexpected answer from the controller: \(error)")
        }
    }

    // Typed calls.
    public func jobs() async throws -> [JobView] { try await get("/v1/training/jobs", as: [JobView].self) }
    public func job(_ id: String) async throws -> JobView { try await get("/v1/training/jobs/\(id)", as: JobView.self) }
    public func incidents() async throws -> [IncidentView] { try await get("/v1/incidents", as: [IncidentView].self) }
    public func nodes() async throws -> [NodeView] { try await get("/v1/nodes", as: [NodeView].self) }

    @discardableResult
    public func submit(_ specText: String) async throws -> JobView {
        try decode(try await call("POST", "/v1/training/jobs", body: Data(specText.utf8), contentType: "application/yaml"), as: JobView.self)
    }
}
