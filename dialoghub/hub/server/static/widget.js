// The inference widget of a model page: the card's `widget:` examples and a text box, sent to the inference server
// (an OpenAI/TGI-style `/v1/chat/completions`) with streaming; the reply is shown as it arrives.
"use strict";
(function () {
  const widget = document.getElementById("inference-widget");
  if (!widget) return;
  const input = document.getElementById("widget-input");
  const output = document.getElementById("widget-output");
  const status = document.getElementById("widget-status");
  const run = document.getElementById("widget-run");
  const endpoint = widget.dataset.endpoint;
  const parameters = JSON.parse(widget.dataset.parameters || "{}");
  let context = []; // the messages an example puts before the text box's (a system prompt, earlier turns)

  for (const button of widget.querySelectorAll(".widget-example")) {
    button.addEventListener("click", () => {
      const messages = JSON.parse(button.dataset.messages);
      const last = messages.length && messages[messages.length - 1].role === "user" ? messages.length - 1 : messages.length;
      context = messages.slice(0, last);
      input.value = last < messages.length ? messages[last].content : "";
    });
  }

  async function compute() {
    if (!endpoint) {
      status.textContent = "No inference server is configured for this Hub.";
      return;
    }
    const body = {
      model: widget.dataset.model,
      messages: context.concat([{ role: "user", content: input.value }]),
      stream: true,
    };
    if (widget.dataset.revision && widget.dataset.revision !== "main") body.revision = widget.dataset.revision;
    if (parameters.max_new_tokens) body.max_tokens = parameters.max_new_tokens;
    if (parameters.temperature !== undefined && parameters.do_sample) body.temperature = parameters.temperature;
    if (parameters.top_p !== undefined && parameters.do_sample) body.top_p = parameters.top_p;
    output.textContent = "";
    status.textContent = "Computing…";
    run.disabled = true;
    try {
      const response = await fetch(endpoint + "/v1/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (!response.ok) {
        const problem = await response.json().catch(() => ({}));
        throw new Error((problem.error && (problem.error.message || problem.error)) || response.statusText);
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        const events = buffered.split("\n\n");
        buffered = events.pop();
        for (const event of events) {
          const data = event.replace(/^data:\s*/, "").trim();
          if (!data || data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message || chunk.error);
          output.textContent += (chunk.choices[0].delta && chunk.choices[0].delta.content) || "";
        }
      }
      status.textContent = "Done";
      widget.dataset.state = "done";
    } catch (error) {
      status.textContent = "Error: " + error.message;
      widget.dataset.state = "error";
    } finally {
      run.disabled = false;
    }
  }

  run.addEventListener("click", compute);
})();
