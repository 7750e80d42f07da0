"""uvicorn's HTTP protocol with one change: a request its parser rejects (a NUL or a control
character in a header, say) gets the API's JSON error body instead of plain text. The parser is
right to refuse such requests; the answer should still look like every other 4xx."""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from polos.protocol import ErrorBody, ErrorDetail


class JsonErrorHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        body = ErrorBody(error=ErrorDetail(code="invalid_http", message=msg)).model_dump_json()
        content = body.encode()
        head = [
            b"HTTP/1.1 400 Bad Request\r\n",
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(content)).encode("ascii") + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
        ]
        self.transport.write(b"".join(head) + content)
        self.transport.close()
