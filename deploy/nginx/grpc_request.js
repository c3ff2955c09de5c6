// Checks a gRPC call (ModelInfer, ModelMetadata, ModelReady) before it reaches Triton (njs, run
// by the reference front proxy). Triton quotes a request's model name, version and tensor
// names in its error messages without a bound; past gRPC's metadata limit (16 KiB) the caller
// then gets a reset stream ("Stream removed", or a 502 through a proxy) instead of a status.
// This bounds those fields and answers only the public model, with a gRPC status of its own
// (a trailers-only response), and passes every other call on with the message already read.
//
// The protobuf walk visits fields, not bytes (lengths skip tensor data), at most MAX_FIELDS
// per message: linear in the message size.

const MAX_NAME_BYTES = 128; // model, tensor and parameter names
const MAX_VERSION_BYTES = 20;
const MAX_ID_BYTES = 256;
const MAX_TENSORS = 64; // inputs, outputs
const MAX_PARAMETERS = 64;
const MAX_FIELDS = 4096; // fields of one message (a request has a few hundred at most)
const PUBLIC_MODEL = "instruction_ner";

const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;

// A gRPC status to answer instead of passing the call on (njs has no class syntax).
function refusal(code, message) {
  return { refused: true, code: code, message: message };
}

function refuse(r, answer) {
  r.headersOut["Content-Type"] = "application/grpc";
  r.headersOut["grpc-status"] = String(answer.code);
  r.headersOut["grpc-message"] = encodeURIComponent(answer.message);
  r.return(200);
}

function invalid(message) {
  return refusal(INVALID_ARGUMENT, message);
}

// [value, next offset] of the varint at ``at``, or null when it runs past ``end`` or is
// longer than ``most`` bytes (tags and lengths: 5, as protobuf's parser demands).
function varint(buf, at, end, most) {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < (most || 10) && at < end; i++) {
    const byte = buf[at++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, at];
    scale *= 128;
  }
  return null;
}

// The protobuf shapes of the calls checked here (inference.proto of Triton's gRPC API): field
// number -> kind. A field of a known number must have its kind's wire type (and a string must
// be UTF-8), as the server's parser demands; otherwise gRPC answers INTERNAL "Unable to parse
// request". Unknown field numbers are skipped, as protobuf does.
const SHAPES = {
  infer: { 1: "string", 2: "string", 3: "string", 4: "map", 5: "input", 6: "output", 7: "bytes" },
  model: { 1: "string", 2: "string" },
  map: { 1: "string", 2: "parameter" },
  parameter: { 1: "varint", 2: "varint", 3: "string", 4: "fixed64", 5: "varint" },
  input: { 1: "string", 2: "string", 3: "varints", 4: "map", 5: "contents" },
  output: { 1: "string", 2: "map" },
  contents: {
    1: "varints",
    2: "varints",
    3: "varints",
    4: "varints",
    5: "varints",
    6: "fixed32s",
    7: "fixed64s",
    8: "bytes",
  },
};
const WIRE = { varint: 0, fixed64: 1, string: 2, bytes: 2, fixed32: 5 };
const MALFORMED = "the request message is malformed";

function utf8(buf, from, to) {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(buf.slice(from, to));
    return true;
  } catch (e) {
    return false;
  }
}

// Whether buf[from:to] is a sequence of whole varints (a packed repeated varint field).
function packedVarints(buf, from, to) {
  let length = 0;
  for (let at = from; at < to; at++) {
    length = buf[at] < 0x80 ? 0 : length + 1;
    if (length >= 10) return false;
  }
  return length === 0;
}

// Whether a field of ``kind`` may have this wire type and payload.
function fieldFits(buf, kind, wire, from, to) {
  if (kind === "varints") return wire === 0 || (wire === 2 && packedVarints(buf, from, to));
  if (kind === "fixed32s") return wire === 5 || (wire === 2 && (to - from) % 4 === 0);
  if (kind === "fixed64s") return wire === 1 || (wire === 2 && (to - from) % 8 === 0);
  if (kind === "string") return wire === 2 && utf8(buf, from, to);
  if (kind in WIRE) return wire === WIRE[kind];
  return wire === 2; // a message
}

// Walks buf[start:end] as a message of ``shape``, checking every field (and the messages in
// it); calls visit(shape, field, from, to) for each, which may return a refusal. Returns a
// refusal or null.
function walk(buf, start, end, shape, visit) {
  let at = start;
  let count = 0;
  while (at < end) {
    if (++count > MAX_FIELDS) return invalid(`a message holds more than ${MAX_FIELDS} fields`);
    const tag = varint(buf, at, end, 5);
    if (tag === null) return invalid(MALFORMED);
    at = tag[1];
    const field = Math.floor(tag[0] / 8);
    const wire = tag[0] % 8;
    if (field < 1 || field > 536870911) return invalid(MALFORMED);
    let from = at;
    let to;
    if (wire === 0) {
      const value = varint(buf, at, end);
      if (value === null) return invalid(MALFORMED);
      to = value[1];
    } else if (wire === 1) {
      to = at + 8;
    } else if (wire === 5) {
      to = at + 4;
    } else if (wire === 2) {
      const length = varint(buf, at, end, 5);
      if (length === null || length[0] > 2147483647) return invalid(MALFORMED);
      from = length[1];
      to = from + length[0];
    } else {
      return invalid(MALFORMED); // groups (3, 4) and unknown wire types
    }
    if (to > end) return invalid(MALFORMED);
    const kind = SHAPES[shape][field];
    if (kind !== undefined) {
      if (!fieldFits(buf, kind, wire, from, to)) return invalid(MALFORMED);
      if (kind in SHAPES) {
        const inner = walk(buf, from, to, kind, visit);
        if (inner) return inner;
      }
      const found = visit(shape, field, from, to);
      if (found) return found;
    }
    at = to;
  }
  return null;
}

function text(buf, from, to) {
  return buf.slice(from, to).toString();
}

function bounded(what, from, to, limit) {
  return to - from > limit ? invalid(`${what} is ${to - from} bytes long, over ${limit}`) : null;
}

// A model name (and version) field of a request: only the public model is served here.
function modelField(buf, field, from, to) {
  if (field === 1) {
    const long = bounded("the model name", from, to, MAX_NAME_BYTES);
    if (long) return long;
    const name = text(buf, from, to);
    if (name !== PUBLIC_MODEL) {
      return refusal(
        NOT_FOUND,
        `model ${JSON.stringify(name)} is not served here; send requests to ${PUBLIC_MODEL}`
      );
    }
  } else if (field === 2) {
    return bounded("the model version", from, to, MAX_VERSION_BYTES);
  }
  return null;
}

// Bounds on the names Triton quotes in its errors, and on counts, per field of each shape.
function limits(buf, counts) {
  return (shape, field, from, to) => {
    if (shape === "infer" || shape === "model") {
      if (field === 1) counts.named = true;
      if (field === 1 || field === 2) return modelField(buf, field, from, to);
      if (field === 3) return bounded("the request id", from, to, MAX_ID_BYTES);
      if (field === 5 && ++counts.inputs > MAX_TENSORS) {
        return invalid(`the request has more than ${MAX_TENSORS} inputs`);
      }
      if (field === 6 && ++counts.outputs > MAX_TENSORS) {
        return invalid(`the request asks for more than ${MAX_TENSORS} outputs`);
      }
      if (field === 4 && ++counts.parameters > MAX_PARAMETERS) {
        return invalid(`the request has more than ${MAX_PARAMETERS} parameters`);
      }
    } else if (shape === "input" || shape === "output") {
      const what = shape === "input" ? "an input" : "an output";
      if (field === 1) return bounded(`${what} name`, from, to, MAX_NAME_BYTES);
      if (shape === "input" && field === 2) return bounded(`${what} datatype`, from, to, 16);
    } else if (shape === "map" && field === 1) {
      return bounded("a parameter name", from, to, MAX_NAME_BYTES);
    }
    return null;
  };
}

function checkMessage(buf, from, to, shape) {
  const counts = { named: false, inputs: 0, outputs: 0, parameters: 0 };
  const found = walk(buf, from, to, shape, limits(buf, counts));
  if (found) return found;
  return counts.named
    ? null
    : refusal(NOT_FOUND, `no model name; send requests to ${PUBLIC_MODEL}`);
}

function checkInfer(buf, from, to) {
  return checkMessage(buf, from, to, "infer");
}

function checkModel(buf, from, to) {
  return checkMessage(buf, from, to, "model");
}

// The one gRPC message of a unary call: 1 byte compressed flag, 4 bytes length, the message.
function message(r) {
  let body;
  try {
    body = r.requestBuffer; // throws when nginx wrote the body to a file
  } catch (e) {
    return invalid("the request is too large");
  }
  if (body === undefined || body === null) return invalid("the request is missing or too large");
  if (body.length < 5) return invalid("the request is not one gRPC message");
  const length = body[1] * 16777216 + body[2] * 65536 + body[3] * 256 + body[4];
  if (body[0] !== 0) return invalid("compressed messages are not accepted");
  if (length !== body.length - 5) return invalid("the request is not one gRPC message");
  return body;
}

function checked(r, check, next) {
  const body = message(r);
  const found = body.refused ? body : check(body, 5, body.length);
  if (found) {
    refuse(r, found);
    return;
  }
  r.internalRedirect(next);
}

function infer(r) {
  checked(r, checkInfer, "@grpc_triton");
}

function model(r) {
  checked(r, checkModel, "@grpc_triton");
}

export default { infer, model };
