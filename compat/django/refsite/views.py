"""Views that let tests see exactly what reached Django through a proxy."""
import hashlib
import time

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

# /big/ repeats this block: byte i of the body is i % 251. The odd period
# makes a dropped, repeated or reordered chunk visible in any check.
_BIG_BLOCK = bytes(range(251)) * 256
_READ_SIZE = 64 * 1024


@csrf_exempt
def echo(request, rest=""):
    """Describe the request as JSON: method, path, query, headers, cookies,
    and the length and SHA-256 of the body, which is read in chunks so that
    a large upload never sits whole in memory."""
    digest = hashlib.sha256()
    length = 0
    while True:
        chunk = request.read(_READ_SIZE)
        if not chunk:
            break
        digest.update(chunk)
        length += len(chunk)
    return JsonResponse(
        {
            "method": request.method,
            "path": request.path,
            "full_path": request.get_full_path(),
            "query_string": request.META.get("QUERY_STRING", ""),
            "query": {key: request.GET.getlist(key) for key in request.GET},
            "headers": dict(request.headers),
            "cookie_header": request.META.get("HTTP_COOKIE", ""),
            "cookies": dict(request.COOKIES),
            "host": request.META.get("HTTP_HOST", ""),
            "remote_addr": request.META.get("REMOTE_ADDR", ""),
            "body_length": length,
            "body_sha256": digest.hexdigest(),
        }
    )


def cookies(request):
    """Answer 201 with two cookies, each in its own Set-Cookie header, and a
    custom header."""
    response = HttpResponse("cookies set\n", status=201, content_type="text/plain")
    response.set_cookie("first", "one")
    response.set_cookie("second", "two", path="/cookies/", httponly=True, samesite="Lax")
    response["X-Refsite-Custom"] = "custom value"
    return response


def _big_chunks(size):
    block = len(_BIG_BLOCK)
    offset = 0
    while offset < size:
        n = min(block, size - offset)
        # A block length that is a multiple of 251 keeps every chunk in phase.
        yield _BIG_BLOCK[:n]
        offset += n


def big(request):
    """Stream n bytes (query parameter n, default 1 MiB) of the i % 251
    pattern. With length=1 the response announces its Content-Length;
    otherwise its end is the end of the stream."""
    try:
        size = int(request.GET.get("n", str(1 << 20)))
    except ValueError:
        return HttpResponse("n must be an integer\n", status=400, content_type="text/plain")
    if size < 0:
        return HttpResponse("n must not be negative\n", status=400, content_type="text/plain")
    response = StreamingHttpResponse(_big_chunks(size), content_type="application/octet-stream")
    if request.GET.get("length") == "1":
        response["Content-Length"] = str(size)
    return response


def status(request, code):
    """Answer with the status code from the path."""
    if code < 200 or code > 599:
        return HttpResponse("status must be 200-599\n", status=400, content_type="text/plain")
    if code in (204, 304):
        return HttpResponse(status=code)
    return HttpResponse("status %d\n" % code, status=code, content_type="text/plain")


def slow(request):
    """Sleep for the given seconds (at most 60) before answering."""
    try:
        seconds = float(request.GET.get("seconds", "1"))
    except ValueError:
        return HttpResponse("seconds must be a number\n", status=400, content_type="text/plain")
    time.sleep(max(0.0, min(seconds, 60.0)))
    return HttpResponse("slept\n", content_type="text/plain")
