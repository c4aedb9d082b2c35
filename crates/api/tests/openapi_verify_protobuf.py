#!/usr/bin/env python3
"""Checks svcnet's /openapi/v2 protobuf against gnostic's schema, outside Rust.

The Rust tests decode the protobuf with a hand-written wire reader; this
script decodes it with classes protoc generates from gnostic's
openapiv2/OpenAPIv2.proto (transcribed below, field numbers verbatim), so a
wrong field number or wire type in the encoder shows up as an unknown field
or a mismatch instead of agreeing with itself.

Usage:
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install protobuf grpcio-tools pyyaml
    SVCNET_OPENAPI_DUMP=/tmp/oa cargo test -p svcnet-api --test openapi_documents dumped
    /tmp/venv/bin/python crates/api/tests/openapi_verify_protobuf.py /tmp/oa

It rebuilds Swagger JSON from the decoded message and requires it to equal
v2.json, requires no unknown fields anywhere, and parses every vendor
extension's Any.yaml with a YAML parser, as kubectl does.
"""
import importlib
import json
import os
import sys
import tempfile

import yaml
from google.protobuf.unknown_fields import UnknownFieldSet
from grpc_tools import protoc

PROTO = r'''
syntax = "proto3";
package openapi.v2;
import "google/protobuf/any.proto";
message AdditionalPropertiesItem { oneof oneof { Schema schema = 1; bool boolean = 2; } }
message Any { google.protobuf.Any value = 1; string yaml = 2; }
message ApiKeySecurity { string type = 1; string name = 2; string in = 3; string description = 4; repeated NamedAny vendor_extension = 5; }
message BasicAuthenticationSecurity { string type = 1; string description = 2; repeated NamedAny vendor_extension = 3; }
message BodyParameter { string description = 1; string name = 2; string in = 3; bool required = 4; Schema schema = 5; repeated NamedAny vendor_extension = 6; }
message Contact { string name = 1; string url = 2; string email = 3; repeated NamedAny vendor_extension = 4; }
message Default { repeated NamedAny additional_properties = 1; }
message Definitions { repeated NamedSchema additional_properties = 1; }
message Document {
  string swagger = 1; Info info = 2; string host = 3; string base_path = 4; repeated string schemes = 5;
  repeated string consumes = 6; repeated string produces = 7; Paths paths = 8; Definitions definitions = 9;
  ParameterDefinitions parameters = 10; ResponseDefinitions responses = 11; repeated SecurityRequirement security = 12;
  SecurityDefinitions security_definitions = 13; repeated Tag tags = 14; ExternalDocs external_docs = 15;
  repeated NamedAny vendor_extension = 16;
}
message Examples { repeated NamedAny additional_properties = 1; }
message ExternalDocs { string description = 1; string url = 2; repeated NamedAny vendor_extension = 3; }
message FileSchema { string format = 1; string title = 2; string description = 3; Any default = 4; repeated string required = 5; string type = 6; bool read_only = 7; ExternalDocs external_docs = 8; Any example = 9; repeated NamedAny vendor_extension = 10; }
message FormDataParameterSubSchema {
  bool required = 1; string in = 2; string description = 3; string name = 4; bool allow_empty_value = 5; string type = 6; string format = 7;
  PrimitivesItems items = 8; string collection_format = 9; Any default = 10; double maximum = 11; bool exclusive_maximum = 12;
  double minimum = 13; bool exclusive_minimum = 14; int64 max_length = 15; int64 min_length = 16; string pattern = 17;
  int64 max_items = 18; int64 min_items = 19; bool unique_items = 20; repeated Any enum = 21; double multiple_of = 22;
  repeated NamedAny vendor_extension = 23;
}
message Header {
  string type = 1; string format = 2; PrimitivesItems items = 3; string collection_format = 4; Any default = 5; double maximum = 6;
  bool exclusive_maximum = 7; double minimum = 8; bool exclusive_minimum = 9; int64 max_length = 10; int64 min_length = 11;
  string pattern = 12; int64 max_items = 13; int64 min_items = 14; bool unique_items = 15; repeated Any enum = 16;
  double multiple_of = 17; string description = 18; repeated NamedAny vendor_extension = 19;
}
message HeaderParameterSubSchema {
  bool required = 1; string in = 2; string description = 3; string name = 4; string type = 5; string format = 6; PrimitivesItems items = 7;
  string collection_format = 8; Any default = 9; double maximum = 10; bool exclusive_maximum = 11; double minimum = 12;
  bool exclusive_minimum = 13; int64 max_length = 14; int64 min_length = 15; string pattern = 16; int64 max_items = 17;
  int64 min_items = 18; bool unique_items = 19; repeated Any enum = 20; double multiple_of = 21; repeated NamedAny vendor_extension = 22;
}
message Headers { repeated NamedHeader additional_properties = 1; }
message Info { string title = 1; string version = 2; string description = 3; string terms_of_service = 4; Contact contact = 5; License license = 6; repeated NamedAny vendor_extension = 7; }
message ItemsItem { repeated Schema schema = 1; }
message JsonReference { string _ref = 1; string description = 2; }
message License { string name = 1; string url = 2; repeated NamedAny vendor_extension = 3; }
message NamedAny { string name = 1; Any value = 2; }
message NamedHeader { string name = 1; Header value = 2; }
message NamedParameter { string name = 1; Parameter value = 2; }
message NamedPathItem { string name = 1; PathItem value = 2; }
message NamedResponse { string name = 1; Response value = 2; }
message NamedResponseValue { string name = 1; ResponseValue value = 2; }
message NamedSchema { string name = 1; Schema value = 2; }
message NamedSecurityDefinitionsItem { string name = 1; SecurityDefinitionsItem value = 2; }
message NamedString { string name = 1; string value = 2; }
message NamedStringArray { string name = 1; StringArray value = 2; }
message NonBodyParameter { oneof oneof { HeaderParameterSubSchema header_parameter_sub_schema = 1; FormDataParameterSubSchema form_data_parameter_sub_schema = 2; QueryParameterSubSchema query_parameter_sub_schema = 3; PathParameterSubSchema path_parameter_sub_schema = 4; } }
message Oauth2AccessCodeSecurity { string type = 1; string flow = 2; Oauth2Scopes scopes = 3; string authorization_url = 4; string token_url = 5; string description = 6; repeated NamedAny vendor_extension = 7; }
message Oauth2ApplicationSecurity { string type = 1; string flow = 2; Oauth2Scopes scopes = 3; string token_url = 4; string description = 5; repeated NamedAny vendor_extension = 6; }
message Oauth2ImplicitSecurity { string type = 1; string flow = 2; Oauth2Scopes scopes = 3; string authorization_url = 4; string description = 5; repeated NamedAny vendor_extension = 6; }
message Oauth2PasswordSecurity { string type = 1; string flow = 2; Oauth2Scopes scopes = 3; string token_url = 4; string description = 5; repeated NamedAny vendor_extension = 6; }
message Oauth2Scopes { repeated NamedString additional_properties = 1; }
message Operation {
  repeated string tags = 1; string summary = 2; string description = 3; ExternalDocs external_docs = 4; string operation_id = 5;
  repeated string produces = 6; repeated string consumes = 7; repeated ParametersItem parameters = 8; Responses responses = 9;
  repeated string schemes = 10; bool deprecated = 11; repeated SecurityRequirement security = 12; repeated NamedAny vendor_extension = 13;
}
message Parameter { oneof oneof { BodyParameter body_parameter = 1; NonBodyParameter non_body_parameter = 2; } }
message ParameterDefinitions { repeated NamedParameter additional_properties = 1; }
message ParametersItem { oneof oneof { Parameter parameter = 1; JsonReference json_reference = 2; } }
message PathItem { string _ref = 1; Operation get = 2; Operation put = 3; Operation post = 4; Operation delete = 5; Operation options = 6; Operation head = 7; Operation patch = 8; repeated ParametersItem parameters = 9; repeated NamedAny vendor_extension = 10; }
message PathParameterSubSchema {
  bool required = 1; string in = 2; string description = 3; string name = 4; string type = 5; string format = 6; PrimitivesItems items = 7;
  string collection_format = 8; Any default = 9; double maximum = 10; bool exclusive_maximum = 11; double minimum = 12;
  bool exclusive_minimum = 13; int64 max_length = 14; int64 min_length = 15; string pattern = 16; int64 max_items = 17;
  int64 min_items = 18; bool unique_items = 19; repeated Any enum = 20; double multiple_of = 21; repeated NamedAny vendor_extension = 22;
}
message Paths { repeated NamedAny vendor_extension = 1; repeated NamedPathItem path = 2; }
message PrimitivesItems {
  string type = 1; string format = 2; PrimitivesItems items = 3; string collection_format = 4; Any default = 5; double maximum = 6;
  bool exclusive_maximum = 7; double minimum = 8; bool exclusive_minimum = 9; int64 max_length = 10; int64 min_length = 11;
  string pattern = 12; int64 max_items = 13; int64 min_items = 14; bool unique_items = 15; repeated Any enum = 16;
  double multiple_of = 17; repeated NamedAny vendor_extension = 18;
}
message Properties { repeated NamedSchema additional_properties = 1; }
message QueryParameterSubSchema {
  bool required = 1; string in = 2; string description = 3; string name = 4; bool allow_empty_value = 5; string type = 6; string format = 7;
  PrimitivesItems items = 8; string collection_format = 9; Any default = 10; double maximum = 11; bool exclusive_maximum = 12;
  double minimum = 13; bool exclusive_minimum = 14; int64 max_length = 15; int64 min_length = 16; string pattern = 17;
  int64 max_items = 18; int64 min_items = 19; bool unique_items = 20; repeated Any enum = 21; double multiple_of = 22;
  repeated NamedAny vendor_extension = 23;
}
message Response { string description = 1; SchemaItem schema = 2; Headers headers = 3; Examples examples = 4; repeated NamedAny vendor_extension = 5; }
message ResponseDefinitions { repeated NamedResponse additional_properties = 1; }
message ResponseValue { oneof oneof { Response response = 1; JsonReference json_reference = 2; } }
message Responses { repeated NamedResponseValue response_code = 1; repeated NamedAny vendor_extension = 2; }
message Schema {
  string _ref = 1; string format = 2; string title = 3; string description = 4; Any default = 5; double multiple_of = 6;
  double maximum = 7; bool exclusive_maximum = 8; double minimum = 9; bool exclusive_minimum = 10; int64 max_length = 11;
  int64 min_length = 12; string pattern = 13; int64 max_items = 14; int64 min_items = 15; bool unique_items = 16;
  int64 max_properties = 17; int64 min_properties = 18; repeated string required = 19; repeated Any enum = 20;
  AdditionalPropertiesItem additional_properties = 21; TypeItem type = 22; ItemsItem items = 23; repeated Schema all_of = 24;
  Properties properties = 25; string discriminator = 26; bool read_only = 27; Xml xml = 28; ExternalDocs external_docs = 29;
  Any example = 30; repeated NamedAny vendor_extension = 31;
}
message SchemaItem { oneof oneof { Schema schema = 1; FileSchema file_schema = 2; } }
message SecurityDefinitions { repeated NamedSecurityDefinitionsItem additional_properties = 1; }
message SecurityDefinitionsItem { oneof oneof { BasicAuthenticationSecurity basic_authentication_security = 1; ApiKeySecurity api_key_security = 2; Oauth2ImplicitSecurity oauth2_implicit_security = 3; Oauth2PasswordSecurity oauth2_password_security = 4; Oauth2ApplicationSecurity oauth2_application_security = 5; Oauth2AccessCodeSecurity oauth2_access_code_security = 6; } }
message SecurityRequirement { repeated NamedStringArray additional_properties = 1; }
message StringArray { repeated string value = 1; }
message Tag { string name = 1; string description = 2; ExternalDocs external_docs = 3; repeated NamedAny vendor_extension = 4; }
message TypeItem { repeated string value = 1; }
message VendorExtension { repeated NamedAny additional_properties = 1; }
message Xml { string name = 1; string namespace = 2; string prefix = 3; bool attribute = 4; bool wrapped = 5; repeated NamedAny vendor_extension = 6; }
'''


def load_module():
    out = tempfile.mkdtemp()
    with open(os.path.join(out, "OpenAPIv2.proto"), "w") as f:
        f.write(PROTO)
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main(["protoc", f"-I{out}", f"-I{include}", f"--python_out={out}", "OpenAPIv2.proto"])
    if rc != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, out)
    return importlib.import_module("OpenAPIv2_pb2")


def check_no_unknown_fields(msg, path="Document"):
    unknown = UnknownFieldSet(msg)
    if len(unknown):
        raise AssertionError(f"{path}: unknown fields {[u.field_number for u in unknown]}")
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        # `label` on older protobuf releases, `is_repeated` on newer ones.
        repeated = getattr(field, "is_repeated", None)
        if repeated is None:
            repeated = field.label == field.LABEL_REPEATED
        if repeated:
            for i, item in enumerate(value):
                check_no_unknown_fields(item, f"{path}.{field.name}[{i}]")
        else:
            check_no_unknown_fields(value, f"{path}.{field.name}")


def any_value(a):
    text = a.yaml
    value = yaml.safe_load(text)
    # YAML and JSON must agree, or kubectl would read something else.
    assert value == json.loads(text), text
    return value


def ext(out, named_anys):
    for na in named_anys:
        assert na.name.startswith("x-"), na.name
        out[na.name] = any_value(na.value)


def put(out, key, value):
    # proto3 drops empty strings and lists; so does the JSON we compare to.
    if value not in ("", None, []):
        out[key] = value


def schema(s):
    out = {}
    put(out, "$ref", s._ref)
    put(out, "format", s.format)
    put(out, "title", s.title)
    put(out, "description", s.description)
    if s.HasField("default"):
        out["default"] = any_value(s.default)
    for name in ("maximum", "minimum"):
        if getattr(s, name):
            out[name] = getattr(s, name)
    for name, key in (("max_length", "maxLength"), ("min_length", "minLength"), ("max_items", "maxItems"),
                      ("min_items", "minItems")):
        if getattr(s, name):
            out[key] = getattr(s, name)
    put(out, "pattern", s.pattern)
    if s.unique_items:
        out["uniqueItems"] = True
    put(out, "required", list(s.required))
    if len(s.enum):
        out["enum"] = [any_value(a) for a in s.enum]
    if s.HasField("additional_properties"):
        ap = s.additional_properties
        which = ap.WhichOneof("oneof")
        out["additionalProperties"] = schema(ap.schema) if which == "schema" else ap.boolean
    if s.HasField("type"):
        assert len(s.type.value) == 1, s.type.value
        out["type"] = s.type.value[0]
    if s.HasField("items"):
        assert len(s.items.schema) == 1
        out["items"] = schema(s.items.schema[0])
    if len(s.all_of):
        out["allOf"] = [schema(x) for x in s.all_of]
    if s.HasField("properties"):
        out["properties"] = {p.name: schema(p.value) for p in s.properties.additional_properties}
    if s.read_only:
        out["readOnly"] = True
    if s.HasField("example"):
        out["example"] = any_value(s.example)
    ext(out, s.vendor_extension)
    return out


def parameter(p):
    out = {}
    which = p.WhichOneof("oneof")
    if which == "body_parameter":
        b = p.body_parameter
        put(out, "description", b.description)
        put(out, "name", b.name)
        put(out, "in", b.__getattribute__("in"))
        if b.required:
            out["required"] = True
        if b.HasField("schema"):
            out["schema"] = schema(b.schema)
        ext(out, b.vendor_extension)
        return out
    nb = p.non_body_parameter
    sub = getattr(nb, nb.WhichOneof("oneof"))
    if sub.required:
        out["required"] = True
    put(out, "in", sub.__getattribute__("in"))
    put(out, "description", sub.description)
    put(out, "name", sub.name)
    put(out, "type", sub.type)
    put(out, "format", sub.format)
    if sub.unique_items:
        out["uniqueItems"] = True
    ext(out, sub.vendor_extension)
    assert out["in"] == {"query_parameter_sub_schema": "query", "path_parameter_sub_schema": "path",
                         "header_parameter_sub_schema": "header",
                         "form_data_parameter_sub_schema": "formData"}[nb.WhichOneof("oneof")]
    return out


def parameters_items(items):
    out = []
    for item in items:
        if item.WhichOneof("oneof") == "json_reference":
            out.append({"$ref": item.json_reference._ref})
        else:
            out.append(parameter(item.parameter))
    return out


def operation(o):
    out = {}
    put(out, "tags", list(o.tags))
    put(out, "description", o.description)
    put(out, "operationId", o.operation_id)
    put(out, "produces", list(o.produces))
    put(out, "consumes", list(o.consumes))
    put(out, "parameters", parameters_items(o.parameters))
    responses = {}
    for nr in o.responses.response_code:
        assert nr.value.WhichOneof("oneof") == "response"
        r = nr.value.response
        resp = {"description": r.description}
        if r.HasField("schema"):
            assert r.schema.WhichOneof("oneof") == "schema"
            resp["schema"] = schema(r.schema.schema)
        responses[nr.name] = resp
    out["responses"] = responses
    put(out, "schemes", list(o.schemes))
    ext(out, o.vendor_extension)
    return out


def document(d):
    out = {"swagger": d.swagger, "info": {"title": d.info.title, "version": d.info.version}}
    paths = {}
    for np in d.paths.path:
        item = {}
        for method in ("get", "put", "post", "delete", "options", "head", "patch"):
            if np.value.HasField(method):
                item[method] = operation(getattr(np.value, method))
        put(item, "parameters", parameters_items(np.value.parameters))
        paths[np.name] = item
    out["paths"] = paths
    out["definitions"] = {ns.name: schema(ns.value) for ns in d.definitions.additional_properties}
    out["parameters"] = {n.name: parameter(n.value) for n in d.parameters.additional_properties}
    out["security"] = [{p.name: list(p.value.value) for p in req.additional_properties} for req in d.security]
    sec = {}
    for item in d.security_definitions.additional_properties:
        k = item.value.api_key_security
        sec[item.name] = {"type": k.type, "name": k.name, "in": k.__getattribute__("in"), "description": k.description}
    out["securityDefinitions"] = sec
    return out


def main():
    dump = sys.argv[1] if len(sys.argv) > 1 else "/tmp/oa"
    pb = load_module()
    with open(os.path.join(dump, "v2.pb"), "rb") as f:
        raw = f.read()
    with open(os.path.join(dump, "v2.json")) as f:
        expected = json.load(f)
    doc = pb.Document.FromString(raw)
    check_no_unknown_fields(doc)
    decoded = document(doc)
    for section in ("swagger", "info", "security", "securityDefinitions", "parameters"):
        assert decoded[section] == expected[section], section
    for name, item in expected["paths"].items():
        assert decoded["paths"].get(name) == item, name
    for name, d in expected["definitions"].items():
        assert decoded["definitions"].get(name) == d, name
    assert decoded == expected
    # Re-encoding with the reference implementation gives the same bytes:
    # same fields, same order, same defaults omitted.
    assert doc.SerializeToString() == raw, "protoc's encoding differs from ours"
    ops = sum(1 for item in doc.paths.path for m in ("get", "put", "post", "delete", "patch") if item.value.HasField(m))
    print(f"ok: {len(raw)} bytes, {len(doc.paths.path)} paths, {ops} operations, "
          f"{len(doc.definitions.additional_properties)} definitions, {len(doc.parameters.additional_properties)} shared parameters")


if __name__ == "__main__":
    main()
