// The Vercel AI SDK (`ai` with @ai-sdk/openai, @ai-sdk/anthropic, @ai-sdk/google) against
// Gatehouse, driven by tests/it/frameworks.rs:
//
//   node ai_sdk.mjs <gateway base URL> <flavour> <mode> <model>
//
// flavour: openai (the Responses API, `openai(model)`, stored by default) | openai-chat
// (`openai.chat(model)`, Chat Completions) | anthropic | google; mode: generate (generateText)
// | stream (streamText). The environment variable AI_SDK_EXPECT holds what the mock provider
// behind the gateway will answer, as JSON:
//
//   {"toolOutput": "...", "turns": [{"prompt": "...", "steps": [
//     {"text": "...", "toolCalls": [{"toolName": "...", "input": {...}}],
//      "finishReason": "tool-calls", "usage": {"inputTokens": 1, "outputTokens": 2}}, ...]}]}
//
// Turn 1 sends its prompt with one tool (whose `execute` returns `toolOutput`) and a loop of
// up to five steps; turn 2 sends turn 1's messages (the prompt, then `response.messages`)
// and its own prompt. Every step of both turns is checked against the expectation: its text,
// its tool calls, its finish reason, its token usage. Prints a JSON summary with
// `"ok": true` and exits 0 when everything matches; otherwise prints what differed and exits 1.

import { generateText, stepCountIs, streamText, tool } from "ai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { createGoogleGenerativeAI } from "@ai-sdk/google";
import { createOpenAI } from "@ai-sdk/openai";
import { z } from "zod";

const [base, flavour, mode, modelName] = process.argv.slice(2);
if (!base || !flavour || !mode || !modelName) {
  fail("usage: node ai_sdk.mjs <base URL> <openai|openai-chat|anthropic|google> <generate|stream> <model>");
}
const expect = JSON.parse(process.env.AI_SDK_EXPECT ?? "null") ?? fail("AI_SDK_EXPECT is not set");
const apiKey = "sk-gatehouse-test";

function fail(message, details) {
  console.log(JSON.stringify({ ok: false, flavour, mode, error: message, details }, null, 2));
  process.exit(1);
}

function model() {
  switch (flavour) {
    case "openai":
      return createOpenAI({ baseURL: `${base}/v1`, apiKey })(modelName);
    case "openai-chat":
      return createOpenAI({ baseURL: `${base}/v1`, apiKey }).chat(modelName);
    case "anthropic":
      return createAnthropic({ baseURL: `${base}/anthropic/v1`, apiKey })(modelName);
    case "google":
      return createGoogleGenerativeAI({ baseURL: `${base}/gemini/v1beta`, apiKey })(modelName);
    default:
      return fail(`unknown flavour ${flavour}`);
  }
}

const executed = [];
const tools = {
  get_weather: tool({
    description: "The current weather in a city",
    inputSchema: z.object({ city: z.string().describe("The city's name") }),
    execute: async ({ city }) => {
      executed.push(city);
      return expect.toolOutput;
    },
  }),
};

// One call (a turn) of up to five steps; its steps and response, or the error it met.
async function turn(messages) {
  const options = { model: model(), tools, stopWhen: stepCountIs(5), messages, maxRetries: 0 };
  if (mode === "generate") {
    const r = await generateText(options);
    return { steps: r.steps, response: r.response, totalUsage: r.totalUsage };
  }
  if (mode !== "stream") fail(`unknown mode ${mode}`);
  const errors = [];
  const r = streamText({ ...options, onError: ({ error }) => errors.push(error) });
  const kinds = {};
  let streamed = "";
  for await (const part of r.fullStream) {
    kinds[part.type] = (kinds[part.type] ?? 0) + 1;
    if (part.type === "text-delta") streamed += part.text;
    if (part.type === "error") errors.push(part.error);
  }
  if (errors.length > 0) throw errors[0];
  const steps = await r.steps;
  const joined = steps.map((s) => s.text).join("");
  if (streamed !== joined) {
    fail("the streamed text deltas differ from the steps' text", { streamed, steps: joined });
  }
  return { steps, response: await r.response, totalUsage: await r.totalUsage, parts: kinds };
}

// What a step is, in the expectation's terms.
function observe(step) {
  return {
    text: step.text,
    toolCalls: step.toolCalls.map((c) => ({ toolName: c.toolName, input: c.input })),
    finishReason: step.finishReason,
    usage: { inputTokens: step.usage.inputTokens, outputTokens: step.usage.outputTokens },
  };
}

// JSON with the keys of every object in order, so that equal values compare equal.
function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  }
  return v;
}

function same(a, b) {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function describe(error) {
  return {
    message: String(error?.message ?? error),
    statusCode: error?.statusCode,
    url: error?.url,
    responseBody: error?.responseBody,
    requestBodyValues: error?.requestBodyValues,
    cause: error?.cause ? String(error.cause?.message ?? error.cause) : undefined,
  };
}

const summary = { ok: true, flavour, mode, model: modelName, turns: [] };
let messages = [];
for (const [t, want] of expect.turns.entries()) {
  messages = [...messages, { role: "user", content: want.prompt }];
  let result;
  try {
    result = await turn(messages);
  } catch (error) {
    fail(`turn ${t + 1} failed`, describe(error));
  }
  const got = result.steps.map(observe);
  const mismatches = [];
  if (got.length !== want.steps.length) {
    mismatches.push({ what: "number of steps", want: want.steps.length, got: got.length });
  }
  for (const [i, w] of want.steps.entries()) {
    const g = got[i] ?? {};
    for (const key of ["text", "toolCalls", "finishReason", "usage"]) {
      if (!same(g[key], w[key])) mismatches.push({ step: i + 1, what: key, want: w[key], got: g[key] });
    }
  }
  const sum = (key) => want.steps.reduce((n, s) => n + s.usage[key], 0);
  for (const key of ["inputTokens", "outputTokens"]) {
    if (result.totalUsage[key] !== sum(key)) {
      mismatches.push({ what: `totalUsage.${key}`, want: sum(key), got: result.totalUsage[key] });
    }
  }
  if (mismatches.length > 0) fail(`turn ${t + 1} differs from what the provider answered`, mismatches);
  summary.turns.push({
    steps: got.map((g, i) => ({
      ...g,
      rawFinishReason: result.steps[i].rawFinishReason,
      gatewayWarnings: result.steps[i].response?.headers?.["x-gatehouse-warnings"],
    })),
    totalUsage: result.totalUsage,
    streamParts: result.parts,
  });
  messages = [...messages, ...result.response.messages];
}
const calls = expect.turns.flatMap((t) => t.steps).flatMap((s) => s.toolCalls).length;
if (executed.length !== calls) fail("the tool ran a different number of times", { executed, calls });
console.log(JSON.stringify(summary));
