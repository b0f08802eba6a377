//! The configuration examples of the ECA editor's Bedrock provider documentation ("the
//! seed", `../shared/seed/`), exactly as it prints them (comments included), for the
//! tests that check the client and the CLI against them.

// The three configuration examples, exactly as the seed prints them (comments included).

pub(crate) const CONFIG_PROXY: &str = r#"{
  "providers": {
    "bedrock": {
      "api": "bedrock",
      "key": "${env:BEDROCK_API_KEY}",
      "url": "https://api.company.com/api/cloud/api-management/ai-gateway/1.0/model/",
      "region": "us-east-1",
      "models": {
        "claude-3-sonnet": {
          "modelName": "anthropic.claude-3-sonnet-20240229-v1:0",
          "extraPayload": {
            "temperature": 0.7,
            "top_k": 200
            // stream: true (default - uses /converse-stream)
          }
        },
        "claude-3-opus": {
          "modelName": "anthropic.claude-3-opus-20240229-v1:0",
          "extraPayload": {
            "temperature": 0.5,
            "max_tokens": 2048
            // stream: true (default - uses /converse-stream)
          }
        },
        "claude-3-haiku": {
          "modelName": "anthropic.claude-3-haiku-20240307-v1:0",
          "extraPayload": {
            "stream": false, // Explicitly disable streaming
            "temperature": 0.3
            // Uses /converse endpoint
          }
        }
      }
    }
  }
}"#;

pub(crate) const CONFIG_US_WEST_2: &str = r#"{
  "providers": {
    "bedrock": {
      "api": "bedrock",
      "key": "${env:BEDROCK_API_KEY}",
      "region": "us-west-2",
      "models": {
        "claude-3-sonnet": {
          "modelName": "anthropic.claude-3-sonnet-20240229-v1:0"
          // Uses /converse-stream by default
        }
      }
    }
  }
}"#;

pub(crate) const CONFIG_EU_WEST_1: &str = r#"{
  "providers": {
    "bedrock": {
      "api": "bedrock",
      "key": "${env:BEDROCK_API_KEY}",
      "region": "eu-west-1",
      "models": {
        "cohere-command-r": {
          "modelName": "cohere.command-r-v1:0",
          "extraPayload": {
            "stream": false // Force /converse endpoint
          }
        }
      }
    }
  }
}"#;

// The two authentication examples.

pub(crate) const CONFIG_AUTH_PROXY: &str = r#"{
  "providers": {
    "bedrock": {
      "api": "bedrock",
      "key": "${env:BEDROCK_API_KEY}",
      "url": "https://your-proxy.example.com/api/bedrock/",
      "region": "us-east-1"
    }
  }
}"#;

pub(crate) const CONFIG_AUTH_DIRECT: &str = r#"{
  "providers": {
    "bedrock": {
      "api": "bedrock",
      "key": "${env:BEDROCK_API_KEY}",
      "region": "us-east-1"
      // No url specified - uses standard AWS endpoints
    }
  }
}"#;
