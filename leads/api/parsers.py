"""The API's JSON parser: DRF's, bounded. JSON nested a few hundred levels deep makes Python's
decoder raise RecursionError, which would be a 500; here it is a 400 that says why. (How deep a
stored object may be is the serializers' rule: `serializers.validate_json_object`.)"""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
