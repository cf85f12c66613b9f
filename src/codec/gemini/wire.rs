//! Gemini wire types, request side: `GenerateContentRequest` and `CountTokensRequest` as in
//! ../shared/specs/google/generativelanguage-v1beta.discovery.json, as Gemini CLI and the
//! `google-genai` SDKs send them. Only what the decoder (`request`) reads is modelled.
//!
//! These types read a body the way Gatehouse has always read Gemini requests, which is more
//! forgiving than the other ingress schemas:
//! - keys are Google's JSON names (lowerCamelCase). Google also takes the proto names
//!   (`system_instruction`); Gatehouse never has, and treats them as unknown keys;
//! - an unknown key is skipped without being decoded. The decoder warns only for what it
//!   knows it drops: `safetySettings`, `cachedContent`, `labels`, and tools other than
//!   functions;
//! - `null` counts as absent; when a key repeats, its last value counts (as in a JSON object
//!   read whole);
//! - a value of the wrong JSON type counts as absent: `"topK": "5"` sets no `topK`, and a
//!   float never fills an integer field. In the place of an object, any other value reads as
//!   an object with no fields (`"inlineData": 1` is an `inlineData` without `data`);
//! - a list that is not an array is kept as [`List::NotArray`], so the decoder can refuse it
//!   where it must (`contents`, `parts`) and ignore it elsewhere.
//!
//! So decoding fails here only on malformed JSON, or on a body that is not an object. Every
//! other error comes from the decoder, which names the field at fault.
//!
//! The `Deserialize` impls are written here, not derived: a derived impl refuses a value of
//! the wrong type or a repeated key, which Gemini clients have never been refused for. They
//! read the body once, in a single pass, with no `flatten`, `untagged` or intermediate
//! `Value`: each object reads its own fields (the `Fields` trait), and skips other keys with
//! `IgnoredAny`. Only JSON-Schema-valued and free-form fields become a `Value`: function
//! `args`, `response`, the schemas.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::codec::extra::Key;

/// What a decoder says of a body (or a nested `generateContentRequest`) that is not an
/// object.
pub const NOT_AN_OBJECT: &str = "the request body must be a JSON object";

/// `GenerateContentRequest`. The `model` in the body is ignored: the path names it.
#[derive(Debug, Default)]
pub struct GeminiRequest {
    pub contents: Option<List<GeminiContent>>,
    pub system_instruction: Option<GeminiContent>,
    pub tools: Option<List<GeminiTool>>,
    pub tool_config: Option<GeminiToolConfig>,
    pub generation_config: Option<GeminiGenerationConfig>,
    /// The following are dropped with a warning, so only whether they are present counts.
    pub safety_settings: Option<IgnoredAny>,
    pub cached_content: Option<IgnoredAny>,
    /// Vertex AI's request labels (not in the Gemini API's schema).
    pub labels: Option<IgnoredAny>,
}

/// `CountTokensRequest`: the fields of a `GenerateContentRequest` (the API documents only
/// `contents`), or a whole one under `generateContentRequest`.
#[derive(Debug, Default)]
pub struct GeminiCountTokensRequest {
    pub request: GeminiRequest,
    pub generate_content_request: Option<Nested>,
}

/// A `generateContentRequest` key, present even when it is not an object (the decoder
/// refuses it then, as it refuses such a body).
#[derive(Debug)]
pub enum Nested {
    Request(Box<GeminiRequest>),
    NotAnObject,
}

/// `Content`: one turn. A missing `role` is the user's.
#[derive(Debug, Default)]
pub struct GeminiContent {
    pub role: Option<String>,
    pub parts: Option<List<GeminiPart>>,
}

/// `Part`: the decoder takes the first of `text` (a string), `inlineData`, `fileData`,
/// `functionCall`, `functionResponse`, code execution, in that order.
#[derive(Debug, Default)]
pub struct GeminiPart {
    pub text: Option<String>,
    pub thought: Option<bool>,
    pub thought_signature: Option<String>,
    pub inline_data: Option<GeminiBlob>,
    pub file_data: Option<GeminiFileData>,
    pub function_call: Option<GeminiFunctionCall>,
    pub function_response: Option<GeminiFunctionResponse>,
    /// Code execution runs on Google's side only: only whether the part holds it counts.
    pub executable_code: Option<IgnoredAny>,
    pub code_execution_result: Option<IgnoredAny>,
}

/// `Blob` (`inlineData`): base64 `data` of a `mimeType`.
#[derive(Debug, Default)]
pub struct GeminiBlob {
    pub mime_type: Option<String>,
    pub data: Option<String>,
}

/// `FileData`: a file by URI.
#[derive(Debug, Default)]
pub struct GeminiFileData {
    pub mime_type: Option<String>,
    pub file_uri: Option<String>,
}

/// `FunctionCall`. Its `id` is optional in Gemini's schema.
#[derive(Debug, Default)]
pub struct GeminiFunctionCall {
    pub id: Option<String>,
    pub name: Option<String>,
    pub args: Option<Value>,
}

/// `FunctionResponse`, matched to its call by `id`, else by `name`.
#[derive(Debug, Default)]
pub struct GeminiFunctionResponse {
    pub id: Option<String>,
    pub name: Option<String>,
    pub response: Option<Value>,
}

/// `Tool`: function declarations, or one of Google's own tools (`googleSearch`,
/// `googleSearchRetrieval`, `codeExecution`, `urlContext`, `fileSearch`, `googleMaps`,
/// `computerUse`, `mcpServers`, ...), which run on Google's side only.
#[derive(Debug)]
pub enum GeminiTool {
    Object {
        function_declarations: Option<List<GeminiFunctionDeclaration>>,
        /// The other keys of the tool, sorted and without repeats, whatever their values.
        others: Vec<String>,
    },
    /// A tool that is not an object (`null` included).
    NotAnObject,
}

/// `FunctionDeclaration`: `parameters` is Gemini's `Schema` (an OpenAPI subset),
/// `parametersJsonSchema` plain JSON Schema.
#[derive(Debug, Default)]
pub struct GeminiFunctionDeclaration {
    pub name: Option<String>,
    pub description: Option<String>,
    pub parameters: Option<Value>,
    pub parameters_json_schema: Option<Value>,
}

/// `ToolConfig`.
#[derive(Debug, Default)]
pub struct GeminiToolConfig {
    pub function_calling_config: Option<GeminiFunctionCallingConfig>,
}

/// `FunctionCallingConfig`: `mode` is `AUTO` when absent; the names keep only strings.
#[derive(Debug, Default)]
pub struct GeminiFunctionCallingConfig {
    pub mode: Option<String>,
    pub allowed_function_names: Vec<String>,
}

/// `GenerationConfig`. Integer fields hold only non-negative integers (a negative or
/// fractional value counts as absent), except `seed`.
#[derive(Debug, Default)]
pub struct GeminiGenerationConfig {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub seed: Option<i64>,
    pub candidate_count: Option<u64>,
    pub response_logprobs: Option<bool>,
    pub logprobs: Option<u64>,
    pub max_output_tokens: Option<u64>,
    /// Only the strings of the list.
    pub stop_sequences: Vec<String>,
    pub response_mime_type: Option<String>,
    pub response_schema: Option<Value>,
    pub response_json_schema: Option<Value>,
    pub thinking_config: Option<GeminiThinkingConfig>,
}

/// `ThinkingConfig`: `thinkingBudget` -1 is "dynamic", 0 is off; `thinkingLevel` is
/// `MINIMAL | LOW | MEDIUM | HIGH` (other values count as absent).
#[derive(Debug, Default)]
pub struct GeminiThinkingConfig {
    pub include_thoughts: Option<bool>,
    pub thinking_budget: Option<i64>,
    pub thinking_level: Option<String>,
}

/// An array field: its items, or the fact that it held something else.
#[derive(Debug)]
pub enum List<T> {
    Items(Vec<T>),
    NotArray,
}

impl<T> List<T> {
    /// The items; none when the value was not an array.
    pub fn items(self) -> Vec<T> {
        match self {
            List::Items(v) => v,
            List::NotArray => Vec::new(),
        }
    }
}

// === decoding ===

/// An object type's fields, read one key at a time (so that a type can add keys of its own:
/// [`GeminiCountTokensRequest`]).
trait Fields<'de>: Default {
    /// Read the value of `key` into its field; `false` (the value left unread) when the type
    /// has no such field.
    fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

/// Every key of an object: into its field, or skipped.
fn read_fields<'de, T: Fields<'de>, A: MapAccess<'de>>(mut map: A) -> Result<T, A::Error> {
    let mut out = T::default();
    while let Some(key) = map.next_key::<Key<'de>>()? {
        if !out.read(&key.0, &mut map)? {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(out)
}

/// Skip a value that is not an object or array element we read.
fn skip_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn skip_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Reads an object with [`Fields`]; any other value (null included) is the empty object.
struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: Fields<'de>> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        read_fields(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        skip_seq(seq)?;
        Ok(T::default())
    }
    fn visit_bool<E>(self, _: bool) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<T, E> {
        Ok(T::default())
    }
    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::default())
    }
}

/// `Fields` and `Deserialize` (through [`ObjectVisitor`]) for an object type: each field
/// with its JSON key and how its value is read:
/// - `value`: the field type's own `Deserialize` (an `Option` is `None` for `null`);
/// - `loose`: an `Option` of a scalar, `None` for a value of another JSON type ([`Loose`]);
/// - `strings`: a `Vec<String>` of the strings of an array ([`Strings`]).
macro_rules! object_fields {
    ($ty:ident { $( $field:ident as $json:literal : $mode:ident ),* $(,)? }) => {
        impl<'de> Fields<'de> for $ty {
            fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
                match key {
                    $( $json => self.$field = object_fields!(@read map $mode), )*
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }
        object_fields!(@deserialize $ty);
    };
    (@deserialize $ty:ident) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(ObjectVisitor(PhantomData))
            }
        }
    };
    (@read $map:ident value) => { $map.next_value()? };
    (@read $map:ident loose) => { $map.next_value::<Loose<_>>()?.0 };
    (@read $map:ident strings) => { $map.next_value::<Strings>()?.0 };
}

object_fields!(GeminiContent {
    role as "role": loose,
    parts as "parts": value,
});
object_fields!(GeminiPart {
    text as "text": loose,
    thought as "thought": loose,
    thought_signature as "thoughtSignature": loose,
    inline_data as "inlineData": value,
    file_data as "fileData": value,
    function_call as "functionCall": value,
    function_response as "functionResponse": value,
    executable_code as "executableCode": value,
    code_execution_result as "codeExecutionResult": value,
});
object_fields!(GeminiBlob {
    mime_type as "mimeType": loose,
    data as "data": loose,
});
object_fields!(GeminiFileData {
    mime_type as "mimeType": loose,
    file_uri as "fileUri": loose,
});
object_fields!(GeminiFunctionCall {
    id as "id": loose,
    name as "name": loose,
    args as "args": value,
});
object_fields!(GeminiFunctionResponse {
    id as "id": loose,
    name as "name": loose,
    response as "response": value,
});
object_fields!(GeminiFunctionDeclaration {
    name as "name": loose,
    description as "description": loose,
    parameters as "parameters": value,
    parameters_json_schema as "parametersJsonSchema": value,
});
object_fields!(GeminiToolConfig {
    function_calling_config as "functionCallingConfig": value,
});
object_fields!(GeminiFunctionCallingConfig {
    mode as "mode": loose,
    allowed_function_names as "allowedFunctionNames": strings,
});
object_fields!(GeminiGenerationConfig {
    temperature as "temperature": loose,
    top_p as "topP": loose,
    top_k as "topK": loose,
    presence_penalty as "presencePenalty": loose,
    frequency_penalty as "frequencyPenalty": loose,
    seed as "seed": loose,
    candidate_count as "candidateCount": loose,
    response_logprobs as "responseLogprobs": loose,
    logprobs as "logprobs": loose,
    max_output_tokens as "maxOutputTokens": loose,
    stop_sequences as "stopSequences": strings,
    response_mime_type as "responseMimeType": loose,
    response_schema as "responseSchema": value,
    response_json_schema as "responseJsonSchema": value,
    thinking_config as "thinkingConfig": value,
});
object_fields!(GeminiThinkingConfig {
    include_thoughts as "includeThoughts": loose,
    thinking_budget as "thinkingBudget": loose,
    thinking_level as "thinkingLevel": loose,
});

// `GeminiRequest` reads its fields like the others, but is refused when it is not an object.
impl<'de> Fields<'de> for GeminiRequest {
    fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "contents" => self.contents = map.next_value()?,
            "systemInstruction" => self.system_instruction = map.next_value()?,
            "tools" => self.tools = map.next_value()?,
            "toolConfig" => self.tool_config = map.next_value()?,
            "generationConfig" => self.generation_config = map.next_value()?,
            "safetySettings" => self.safety_settings = map.next_value()?,
            "cachedContent" => self.cached_content = map.next_value()?,
            "labels" => self.labels = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl<'de> Fields<'de> for GeminiCountTokensRequest {
    fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        if key == "generateContentRequest" {
            self.generate_content_request = Some(map.next_value()?);
            return Ok(true);
        }
        self.request.read(key, map)
    }
}

/// Reads an object with [`Fields`]; refuses any other value with [`NOT_AN_OBJECT`].
struct BodyVisitor<T>(PhantomData<T>);

impl<'de, T: Fields<'de>> Visitor<'de> for BodyVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        read_fields(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<T, A::Error> {
        Err(A::Error::custom(NOT_AN_OBJECT))
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<T, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<T, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<T, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<T, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<T, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<T, E> {
        Err(E::custom(NOT_AN_OBJECT))
    }
}

impl<'de> Deserialize<'de> for GeminiRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BodyVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for GeminiCountTokensRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BodyVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for Nested {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Nested;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Nested, A::Error> {
                Ok(Nested::Request(Box::new(read_fields(map)?)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Nested, A::Error> {
                skip_seq(seq)?;
                Ok(Nested::NotAnObject)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Nested, E> {
                Ok(Nested::NotAnObject)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Nested, E> {
                Ok(Nested::NotAnObject)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Nested, E> {
                Ok(Nested::NotAnObject)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Nested, E> {
                Ok(Nested::NotAnObject)
            }
            fn visit_str<E>(self, _: &str) -> Result<Nested, E> {
                Ok(Nested::NotAnObject)
            }
            fn visit_unit<E>(self) -> Result<Nested, E> {
                Ok(Nested::NotAnObject)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for GeminiTool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GeminiTool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GeminiTool, A::Error> {
                let mut function_declarations = None;
                let mut others = Vec::new();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    if key.0 == "functionDeclarations" {
                        function_declarations = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                        others.push(key.0.into_owned());
                    }
                }
                others.sort_unstable();
                others.dedup();
                Ok(GeminiTool::Object {
                    function_declarations,
                    others,
                })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<GeminiTool, A::Error> {
                skip_seq(seq)?;
                Ok(GeminiTool::NotAnObject)
            }
            fn visit_bool<E>(self, _: bool) -> Result<GeminiTool, E> {
                Ok(GeminiTool::NotAnObject)
            }
            fn visit_i64<E>(self, _: i64) -> Result<GeminiTool, E> {
                Ok(GeminiTool::NotAnObject)
            }
            fn visit_u64<E>(self, _: u64) -> Result<GeminiTool, E> {
                Ok(GeminiTool::NotAnObject)
            }
            fn visit_f64<E>(self, _: f64) -> Result<GeminiTool, E> {
                Ok(GeminiTool::NotAnObject)
            }
            fn visit_str<E>(self, _: &str) -> Result<GeminiTool, E> {
                Ok(GeminiTool::NotAnObject)
            }
            fn visit_unit<E>(self) -> Result<GeminiTool, E> {
                Ok(GeminiTool::NotAnObject)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(List::Items(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<List<T>, A::Error> {
                skip_map(map)?;
                Ok(List::NotArray)
            }
            fn visit_bool<E>(self, _: bool) -> Result<List<T>, E> {
                Ok(List::NotArray)
            }
            fn visit_i64<E>(self, _: i64) -> Result<List<T>, E> {
                Ok(List::NotArray)
            }
            fn visit_u64<E>(self, _: u64) -> Result<List<T>, E> {
                Ok(List::NotArray)
            }
            fn visit_f64<E>(self, _: f64) -> Result<List<T>, E> {
                Ok(List::NotArray)
            }
            fn visit_str<E>(self, _: &str) -> Result<List<T>, E> {
                Ok(List::NotArray)
            }
            fn visit_unit<E>(self) -> Result<List<T>, E> {
                Ok(List::NotArray)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A JSON scalar, as read for a [`Loose`] field; arrays, objects and `null` are `Other`.
enum Scalar {
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    Other,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::I64(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::U64(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::F64(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar::Str(v))
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
                skip_seq(seq)?;
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
                skip_map(map)?;
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// A scalar field read leniently: `None` for `null` and for a value of another JSON type.
/// Numbers convert as `serde_json::Value`'s `as_f64`, `as_u64` and `as_i64` do.
struct Loose<T>(Option<T>);

macro_rules! loose {
    ($t:ty, $($pattern:pat => $value:expr),+ $(,)?) => {
        impl<'de> Deserialize<'de> for Loose<$t> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Loose(match Scalar::deserialize(d)? {
                    $( $pattern => $value, )+
                    _ => None,
                }))
            }
        }
    };
}

loose!(String, Scalar::Str(s) => Some(s));
loose!(bool, Scalar::Bool(b) => Some(b));
loose!(u64, Scalar::U64(n) => Some(n), Scalar::I64(n) => u64::try_from(n).ok());
loose!(i64, Scalar::I64(n) => Some(n), Scalar::U64(n) => i64::try_from(n).ok());
loose!(f64,
    Scalar::F64(n) => Some(n),
    Scalar::I64(n) => Some(n as f64),
    Scalar::U64(n) => Some(n as f64),
);

/// The strings of an array (other items skipped); nothing for any other value.
struct Strings(Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Strings(match List::<Scalar>::deserialize(d)? {
            List::Items(items) => items
                .into_iter()
                .filter_map(|s| match s {
                    Scalar::Str(s) => Some(s),
                    _ => None,
                })
                .collect(),
            List::NotArray => Vec::new(),
        }))
    }
}
