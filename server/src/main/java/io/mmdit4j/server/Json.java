package io.mmdit4j.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Base64;
import java.util.List;

/** The JSON the server answers with: jobs, steps, errors. */
final class Json {
    static final ObjectMapper MAPPER = new ObjectMapper();

    private Json() {}

    static ObjectNode object() {
        return MAPPER.createObjectNode();
    }

    /** A job as {@code GET /v1/generations/{id}} shows it: state, progress, result links (relative), error. */
    static ObjectNode job(Job job) {
        ObjectNode o = object();
        o.put("id", job.id).put("object", "generation").put("created", job.createdMillis / 1000).put("model", job.settings.model());
        Job.State state = job.state();
        o.put("state", state.text());
        ObjectNode p = o.putObject("progress");
        int step = state == Job.State.SUCCEEDED ? job.steps() : job.step();
        p.put("step", step).put("steps", job.steps()).put("fraction", job.steps() == 0 ? 0 : (double) step / job.steps());
        o.put("images_requested", job.images());
        o.put("seconds", round(job.seconds())).put("queued_seconds", round(job.queuedSeconds()));
        o.putObject("links").put("self", "/v1/generations/" + job.id).put("events", "/v1/generations/" + job.id + "/events");
        if (state == Job.State.SUCCEEDED) {
            ArrayNode imgs = o.putArray("images");
            List<Job.Image> result = job.result();
            for (int i = 0; i < result.size(); i++) {
                imgs.addObject().put("index", i).put("url", imageUrl(job, i)).put("seed", Long.toUnsignedString(result.get(i).seed()))
                        .set("settings", result.get(i).settings());
            }
        }
        if (state == Job.State.FAILED) o.set("error", error(job.error()).get("error"));
        if (state == Job.State.CANCELLED) o.put("cancel_reason", job.cancelReason());
        o.set("settings", job.settings.toJson());
        return o;
    }

    static String imageUrl(Job job, int i) {
        return "/v1/generations/" + job.id + "/images/" + i + ".png";
    }

    static String state(Job job) {
        return job(job).toString();
    }

    /** A step event: step, steps, sigma, and (when given) a latent preview as a data URL. */
    static String step(Job job, byte[] previewPng) {
        ObjectNode o = object();
        o.put("id", job.id).put("state", job.state().text()).put("step", job.step()).put("steps", job.steps());
        float sigma = job.sigma();
        if (Float.isFinite(sigma)) o.put("sigma", sigma);
        if (previewPng != null) o.put("preview", "data:image/png;base64," + Base64.getEncoder().encodeToString(previewPng));
        return o.toString();
    }

    static ObjectNode error(ApiException e) {
        ObjectNode o = object();
        ObjectNode err = o.putObject("error");
        err.put("code", e.code).put("message", e.getMessage()).put("type", e.type());
        if (e.param != null) err.put("param", e.param);
        else err.putNull("param");
        return o;
    }

    private static double round(double s) {
        return Math.round(s * 1000) / 1000.0;
    }
}
