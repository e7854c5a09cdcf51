"""schemathesis hooks for scripts/schemathesis.sh.

- A page cursor is opaque: base64url of `<millis>.<id>` that only the server mints, so no schema
  can say which strings parse (one that does not is 400 invalid_cursor, covered by the Rust
  tests). Generated cursors are swapped for well-formed ones so paging is fuzzed past the first
  page instead of stopping at invalid_cursor.
- tus PATCH bodies are plain bytes under their own media type.
"""

import base64
import uuid

import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


@schemathesis.hook
def map_query(context, query):
    if query and query.get("cursor") is not None:
        raw = f"{abs(hash(str(query['cursor']))) % 10**13}.{uuid.uuid4()}"
        query["cursor"] = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    return query

