package io.mmdit4j.server;

/**
 * A request the server refuses or a generation that failed, as the JSON error every endpoint answers with:
 * {@code {"error": {"code": ..., "message": ..., "type": ..., "param": ...}}} and an HTTP status (OpenAI's error shape, so
 * OpenAI clients report it).
 */
final class ApiException extends RuntimeException {
    final int status;
    final String code;
    final String param;

    ApiException(int status, String code, String message) {
        this(status, code, message, null);
    }

    ApiException(int status, String code, String message, String param) {
        super(message);
        this.status = status;
        this.code = code;
        this.param = param;
    }

    static ApiException invalid(String message) {
        return new ApiException(400, "invalid_request", message);
    }

    static ApiException invalid(String message, String param) {
        return new ApiException(400, "invalid_request", message, param);
    }

    /** OpenAI's error type for a status: invalid_request_error (4xx), server_error (5xx). */
    String type() {
        return switch (status) {
            case 401 -> "authentication_error";
            case 404 -> "not_found_error";
            case 429 -> "rate_limit_error";
            default -> status < 500 ? "invalid_request_error" : "server_error";
        };
    }
}
