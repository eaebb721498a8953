import Foundation
import HTTPTypes
import OpenAPIRuntime
import OpenAPIURLSession

extension Client {
    /// A client of the controller at `url` (e.g. `http://127.0.0.1:8080`) sending `token` as its bearer token.
    public static func archon(url: URL, token: String) -> Client {
        Client(serverURL: url, transport: URLSessionTransport(), middlewares: [BearerToken(token: token)])
    }
}

/// Adds `Authorization: Bearer <token>` to every request.
public struct BearerToken: ClientMiddleware {
    let token: String

    public init(token: String) { self.token = token }

    public func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(token)"
        return try await next(request, body, baseURL)
    }
}
