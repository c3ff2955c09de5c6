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

// [value, next offset] of the varint at ``at``, or null when it runs past ``end``.
function varint(buf, at, end) {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10 && at < end; i++) {
    const byte = buf[at++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, at];
    scale *= 128;
  }
  return null;
}

// Calls visit(field, from, to) for each length-delimited field of buf[start:end]; skips the
// others. Returns a refusal or null.
function walk(buf, start, end, visit) {
  let at = start;
  let count = 0;
  while (at < end) {
    if (++count > MAX_FIELDS) return invalid(`a message holds more than ${MAX_FIELDS} fields`);
    const tag = varint(buf, at, end);
    if (tag === null) return invalid("the request message is malformed");
    at = tag[1];
    const field = Math.floor(tag[0] / 8);
    const wire = tag[0] % 8;
    let from = at;
    let to;
    if (wire === 0) {
      const value = varint(buf, at, end);
      if (value === null) return invalid("the request message is malformed");
      to = value[1];
    } else if (wire === 1) {
      to = at + 8;
    } else if (wire === 5) {
      to = at + 4;
    } else if (wire === 2) {
      const length = varint(buf, at, end);
      if (length === null) return invalid("the request message is malformed");
      from = length[1];
      to = from + length[0];
    } else {
      return invalid("the request message is malformed");
    }
    if (to > end) return invalid("the request message is malformed");
    if (wire === 2) {
      const found = visit(field, from, to);
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

// A map<string, InferParameter> entry: key (1) bounded.
function parameterEntry(buf, from, to) {
  return walk(buf, from, to, (field, f, t) =>
    field === 1 ? bounded("a parameter name", f, t, MAX_NAME_BYTES) : null
  );
}

// An input (name 1, datatype 2, parameters 4) or output (name 1, parameters 2) tensor.
function tensor(buf, from, to, what, parametersField) {
  let parameters = 0;
  return walk(buf, from, to, (field, f, t) => {
    if (field === 1) return bounded(`${what} name`, f, t, MAX_NAME_BYTES);
    if (field === 2 && parametersField !== 2) return bounded(`${what} datatype`, f, t, 16);
    if (field === parametersField) {
      if (++parameters > MAX_PARAMETERS) {
        return invalid(`${what} has more than ${MAX_PARAMETERS} parameters`);
      }
      return parameterEntry(buf, f, t);
    }
    return null;
  });
}

function checkInfer(buf, from, to) {
  let inputs = 0;
  let outputs = 0;
  let parameters = 0;
  let named = false;
  const found = walk(buf, from, to, (field, f, t) => {
    if (field === 1) named = true;
    if (field === 1 || field === 2) return modelField(buf, field, f, t);
    if (field === 3) return bounded("the request id", f, t, MAX_ID_BYTES);
    if (field === 4) {
      if (++parameters > MAX_PARAMETERS) {
        return invalid(`the request has more than ${MAX_PARAMETERS} parameters`);
      }
      return parameterEntry(buf, f, t);
    }
    if (field === 5) {
      if (++inputs > MAX_TENSORS) return invalid(`the request has more than ${MAX_TENSORS} inputs`);
      return tensor(buf, f, t, "an input", 4);
    }
    if (field === 6) {
      if (++outputs > MAX_TENSORS) {
        return invalid(`the request asks for more than ${MAX_TENSORS} outputs`);
      }
      return tensor(buf, f, t, "an output", 2);
    }
    return null;
  });
  if (found) return found;
  return named ? null : refusal(NOT_FOUND, `no model name; send requests to ${PUBLIC_MODEL}`);
}

function checkModel(buf, from, to) {
  let named = false;
  const found = walk(buf, from, to, (field, f, t) => {
    if (field === 1) named = true;
    return field === 1 || field === 2 ? modelField(buf, field, f, t) : null;
  });
  if (found) return found;
  return named ? null : refusal(NOT_FOUND, `no model name; send requests to ${PUBLIC_MODEL}`);
}

// The one gRPC message of a unary call: 1 byte compressed flag, 4 bytes length, the message.
function message(r) {
  const body = r.requestBuffer;
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
