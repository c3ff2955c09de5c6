// Checks an HTTP/JSON (KServe v2) inference request before it reaches Triton (njs, run by the
// reference front proxy). Triton 2.51 answers a malformed body with 500, and a deeply nested
// one crashes it (its JSON parser recurses); this answers 400 with a bounded message instead
// and passes only well-formed requests on. Every check is one linear pass over the body.
//
// What is checked: the body is in memory (not spooled to disk); the optional
// Inference-Header-Content-Length (binary tensor extension) is a length within the body; the
// JSON part is UTF-8, valid JSON, nested at most 32 deep (njs's own limit), without lone
// UTF-16 surrogate escapes; the request follows the KServe v2 shape (inputs with name, shape,
// datatype and data whose elements match the datatype, or binary_data_size summing to the
// binary part; outputs with names; parameters with scalar values).

const MAX_QUOTED = 64; // characters of caller text quoted in an error message
const MAX_NAME = 128; // characters of a tensor or parameter name
const MAX_INPUTS = 64;
const MAX_OUTPUTS = 64;
const NUMERIC = /^(U?INT(8|16|32|64)|FP(16|32|64)|BF16)$/;
const INTEGER = /^U?INT(8|16|32|64)$/;

function quote(value) {
  const text = String(value);
  return JSON.stringify(text.length > MAX_QUOTED ? text.slice(0, MAX_QUOTED) + "..." : text);
}

function reject(r, status, message) {
  r.headersOut["Content-Type"] = "application/json";
  r.return(status, JSON.stringify({ error: message }) + "\n");
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

const BACKSLASH = 92;
const LETTER_U = 117;

// 0: not a surrogate; 1: a high (\uD800-\uDBFF) or 2: a low (\uDC00-\uDFFF) surrogate escape
// starting at ``at``.
function surrogateAt(text, at) {
  if (text.charCodeAt(at) !== BACKSLASH || text.charCodeAt(at + 1) !== LETTER_U) return 0;
  if ((text.charCodeAt(at + 2) | 0x20) !== 0x64) return 0; // d or D
  const digit = String.fromCharCode(text.charCodeAt(at + 3) | 0x20);
  if ("89ab".indexOf(digit) >= 0) return 1;
  if ("cdef".indexOf(digit) >= 0) return 2;
  return 0;
}

// The first lone surrogate escape (a high one without its low, or a low one alone) in valid
// JSON text, or null. It visits only the "\u" occurrences (global regex replace and exec loops
// are quadratic in njs); the backslashes counted before each belong to it alone, so the walk
// is linear.
function loneSurrogate(text) {
  let at = text.indexOf("\\u");
  while (at >= 0) {
    let run = 0;
    while (at - 1 - run >= 0 && text.charCodeAt(at - 1 - run) === BACKSLASH) run++;
    let next = at + 2;
    if (run % 2 === 0) {
      // the backslash starts an escape (an even number of escaped backslashes before it)
      const kind = surrogateAt(text, at);
      if (kind === 2) return text.substr(at, 6);
      if (kind === 1) {
        if (surrogateAt(text, at + 6) !== 2) return text.substr(at, 6);
        next = at + 12;
      }
    }
    at = text.indexOf("\\u", next);
  }
  return null;
}

// Parameters Triton reads itself, with the type it demands (it answers 500 otherwise);
// shared-memory ones are refused (the server keeps shared memory closed).
const TYPED = {
  priority: "count",
  timeout: "count",
  sequence_start: "boolean",
  sequence_end: "boolean",
  binary_data_output: "boolean",
  binary_data: "boolean",
  binary_data_size: "count",
  classification: "count",
};

function typeProblem(key, value) {
  if (key.indexOf("shared_memory") === 0) return "shared memory is not served";
  if (key === "sequence_id") {
    return typeof value === "string" || (Number.isInteger(value) && value >= 0)
      ? null
      : "must be a string or an integer >= 0";
  }
  const kind = TYPED[key];
  if (kind === "count" && !(Number.isInteger(value) && value >= 0)) return "must be an integer >= 0";
  if (kind === "boolean" && typeof value !== "boolean") return "must be true or false";
  return null;
}

function checkParameters(where, parameters) {
  if (parameters === undefined) {
    return null;
  }
  if (!isObject(parameters)) {
    return `${where}parameters must be an object`;
  }
  const keys = Object.keys(parameters);
  if (keys.length > 64) return `${where}more than 64 parameters`;
  for (let i = 0; i < keys.length; i++) {
    if (keys[i].length > MAX_NAME) {
      return `${where}a parameter name is longer than ${MAX_NAME} characters`;
    }
    const value = parameters[keys[i]];
    const kind = typeof value;
    if (kind !== "string" && kind !== "number" && kind !== "boolean") {
      return `${where}parameter ${quote(keys[i])} must be a string, a number or a boolean`;
    }
    if (kind === "number" && !Number.isFinite(value)) {
      return `${where}parameter ${quote(keys[i])} must be a finite number`;
    }
    const typed = typeProblem(keys[i], value);
    if (typed) return `${where}parameter ${quote(keys[i])}: ${typed}`;
  }
  return null;
}

// The number of elements of ``data`` (nested arrays flattened).
function elementCount(data) {
  let count = 0;
  const stack = [data];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push(value[i]);
    } else {
      count++;
    }
  }
  return count;
}

// Whether every element of ``data`` (nested arrays allowed) fits ``datatype``.
function elementsMatch(data, datatype) {
  const stack = [data];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        stack.push(value[i]);
      }
      continue;
    }
    if (datatype === "BYTES") {
      if (typeof value !== "string") return false;
    } else if (datatype === "BOOL") {
      if (typeof value !== "boolean") return false;
    } else if (INTEGER.test(datatype)) {
      if (!Number.isInteger(value)) return false;
      if (datatype.charAt(0) === "U" && value < 0) return false;
    } else if (NUMERIC.test(datatype)) {
      if (typeof value !== "number" || !Number.isFinite(value)) return false;
    } else {
      return false;
    }
  }
  return true;
}

function checkInput(input, index) {
  const where = `input ${index}: `;
  if (!isObject(input)) return `${where}must be an object`;
  if (typeof input.name !== "string" || input.name.length === 0) {
    return `${where}name must be a non-empty string`;
  }
  if (input.name.length > MAX_NAME) return `${where}name is longer than ${MAX_NAME} characters`;
  const named = `input ${quote(input.name)}: `;
  if (!Array.isArray(input.shape)) return `${named}shape must be an array of integers`;
  for (let i = 0; i < input.shape.length; i++) {
    if (!Number.isInteger(input.shape[i]) || input.shape[i] < 0) {
      return `${named}shape must be an array of integers >= 0`;
    }
  }
  if (typeof input.datatype !== "string") return `${named}datatype must be a string`;
  if (input.datatype !== "BYTES" && input.datatype !== "BOOL" && !NUMERIC.test(input.datatype)) {
    return `${named}unknown datatype ${quote(input.datatype)}`;
  }
  const problem = checkParameters(named, input.parameters);
  if (problem) return problem;
  const size = input.parameters ? input.parameters.binary_data_size : undefined;
  if (size !== undefined) {
    if (!Number.isInteger(size) || size < 0) {
      return `${named}binary_data_size must be an integer >= 0`;
    }
    if (input.data !== undefined) return `${named}has both data and binary_data_size`;
    return null;
  }
  if (input.data === undefined) return `${named}has no data`;
  if (!Array.isArray(input.data)) return `${named}data must be an array`;
  let expected = 1;
  for (let i = 0; i < input.shape.length; i++) expected *= input.shape[i];
  const count = elementCount(input.data);
  if (count !== expected) {
    return `${named}data holds ${count} elements, its shape [${input.shape.join(", ")}] ${expected}`;
  }
  if (!elementsMatch(input.data, input.datatype)) {
    return `${named}data elements must be ${
      input.datatype === "BYTES"
        ? "strings"
        : input.datatype === "BOOL"
          ? "booleans"
          : "numbers"
    } for datatype ${input.datatype}`;
  }
  return null;
}

function checkRequest(request, binaryBytes) {
  if (!isObject(request)) return "the request must be a JSON object";
  const keys = Object.keys(request);
  for (let i = 0; i < keys.length; i++) {
    if (["id", "parameters", "inputs", "outputs"].indexOf(keys[i]) < 0) {
      return `unknown request field ${quote(keys[i])}`;
    }
  }
  if (request.id !== undefined && typeof request.id !== "string") return "id must be a string";
  const problem = checkParameters("", request.parameters);
  if (problem) return problem;
  if (!Array.isArray(request.inputs) || request.inputs.length === 0) {
    return "inputs must be a non-empty array";
  }
  if (request.inputs.length > MAX_INPUTS) {
    return `at most ${MAX_INPUTS} inputs, got ${request.inputs.length}`;
  }
  let declared = 0;
  for (let i = 0; i < request.inputs.length; i++) {
    const inputProblem = checkInput(request.inputs[i], i);
    if (inputProblem) return inputProblem;
    const parameters = request.inputs[i].parameters;
    if (parameters && parameters.binary_data_size !== undefined) {
      declared += parameters.binary_data_size;
    }
  }
  if (declared !== binaryBytes) {
    return `the inputs declare ${declared} bytes of binary data, the body carries ${binaryBytes}`;
  }
  if (request.outputs !== undefined) {
    if (!Array.isArray(request.outputs)) return "outputs must be an array";
    if (request.outputs.length > MAX_OUTPUTS) {
      return `at most ${MAX_OUTPUTS} outputs, got ${request.outputs.length}`;
    }
    for (let i = 0; i < request.outputs.length; i++) {
      const output = request.outputs[i];
      if (!isObject(output) || typeof output.name !== "string") {
        return `output ${i}: must be an object with a string name`;
      }
      if (output.name.length > MAX_NAME) {
        return `output ${i}: name is longer than ${MAX_NAME} characters`;
      }
      const outputProblem = checkParameters(`output ${quote(output.name)}: `, output.parameters);
      if (outputProblem) return outputProblem;
    }
  }
  return null;
}

// The keys Triton reads. A repeated key is read differently (njs keeps the last copy, Triton
// the first), so the checked value would not be the one Triton uses: a body that holds one
// of these keys more often than the objects Triton reads do is refused.
const READ_KEYS = [
  "id",
  "inputs",
  "outputs",
  "parameters",
  "name",
  "shape",
  "datatype",
  "data",
  "priority",
  "timeout",
  "sequence_id",
  "sequence_start",
  "sequence_end",
  "binary_data_output",
  "binary_data",
  "binary_data_size",
  "classification",
];

// How often ``key`` stands as an object key in the JSON text: "key" followed by a colon (a
// quote inside a string is escaped, so this is a key). indexOf jumps natively: linear.
function keyCount(text, key) {
  const quoted = `"${key}"`;
  let count = 0;
  let at = text.indexOf(quoted);
  while (at >= 0) {
    let next = at + quoted.length;
    while (" \t\r\n".indexOf(text.charAt(next)) >= 0 && next < text.length) next++;
    if (text.charAt(next) === ":") count++;
    at = text.indexOf(quoted, at + quoted.length);
  }
  return count;
}

// The same count in the parsed objects Triton reads (request, its parameters, inputs and
// outputs and their parameters).
function parsedKeyCounts(request) {
  const counts = {};
  const objects = [request, request.parameters];
  const tensors = (request.inputs || []).concat(request.outputs || []);
  for (let i = 0; i < tensors.length; i++) objects.push(tensors[i], tensors[i].parameters);
  for (let i = 0; i < objects.length; i++) {
    if (!isObject(objects[i])) continue;
    const keys = Object.keys(objects[i]);
    for (let k = 0; k < keys.length; k++) counts[keys[k]] = (counts[keys[k]] || 0) + 1;
  }
  return counts;
}

function repeatedKey(text, request) {
  const parsed = parsedKeyCounts(request);
  for (let i = 0; i < READ_KEYS.length; i++) {
    if (keyCount(text, READ_KEYS[i]) > (parsed[READ_KEYS[i]] || 0)) return READ_KEYS[i];
  }
  return null;
}

function check(r) {
  let body;
  try {
    body = r.requestBuffer; // throws when nginx wrote the body to a file
  } catch (e) {
    reject(r, 413, "the request body is too large");
    return;
  }
  if (body === undefined || body === null || body.length === 0) {
    reject(r, 400, "the request has no body");
    return;
  }
  let jsonBytes = body.length;
  const declared = r.headersIn["Inference-Header-Content-Length"];
  if (declared !== undefined) {
    if (!/^[0-9]{1,9}$/.test(declared) || Number(declared) > body.length) {
      reject(
        r,
        400,
        `Inference-Header-Content-Length must be a number of bytes within the body ` +
          `(${body.length}), got ${quote(declared)}`
      );
      return;
    }
    jsonBytes = Number(declared);
  }
  let text;
  try {
    // a byte-order mark is kept (and then refused by JSON.parse): Triton's parser refuses it
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
      body.slice(0, jsonBytes)
    );
  } catch (e) {
    reject(r, 400, "the JSON part of the body is not valid UTF-8");
    return;
  }
  let request;
  try {
    request = JSON.parse(text);
  } catch (e) {
    reject(r, 400, `the body is not valid JSON: ${String(e.message).slice(0, 200)}`);
    return;
  }
  const lone = loneSurrogate(text);
  if (lone !== null) {
    reject(r, 400, `the body holds the unpaired UTF-16 surrogate escape ${quote(lone)}`);
    return;
  }
  const problem = checkRequest(request, body.length - jsonBytes);
  if (problem) {
    reject(r, 400, problem);
    return;
  }
  const repeated = repeatedKey(text, request);
  if (repeated !== null) {
    reject(r, 400, `the key ${quote(repeated)} appears more than once in an object`);
    return;
  }
  r.internalRedirect("@triton_infer");
}

export default { check };
