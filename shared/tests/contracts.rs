use serde_json::Value;
#[test]
fn scratch() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut files: Vec<String> = std::fs::read_dir(format!("{root}/shared/tests/fixtures/vapi")).unwrap().map(|e| e.unwrap().path().display().to_string()).collect();
    files.extend(std::fs::read_dir(format!("{root}/events")).unwrap().map(|e| e.unwrap().path().display().to_string()).filter(|p| p.contains("vapi-")));
    for f in files {
        let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let v = if let Some(b) = v.get("body").and_then(Value::as_str) { serde_json::from_str(b).unwrap_or(Value::Null) } else { v };
        println!("== {f}: {:?}", vapi_schema::validate("ServerMessage", &v));
    }
    let a: Value = serde_json::from_slice(&std::fs::read(format!("{root}/events/assistant.json")).unwrap()).unwrap();
    println!("== assistant: {:?}", vapi_schema::validate("CreateAssistantDTO", &a));
}
