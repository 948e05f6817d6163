package example;

import io.mmdit4j.guidance.Direction;
import io.mmdit4j.pipeline.GenerationRequest;
import io.mmdit4j.pipeline.GenerationResult;
import io.mmdit4j.pipeline.Outputs;
import io.mmdit4j.pipeline.Pipeline;
import io.mmdit4j.pipeline.Pipelines;

import java.nio.file.Path;

/** Generates a guided image, and a batch of two where only the second is guided, with the bundled demo model. */
public final class LibraryUser {
    public static void main(String[] args) {
        Path out = Path.of(args.length > 0 ? args[0] : "library-user-out");
        try (Pipeline flux = Pipelines.load("flux-tiny-demo")) {
            GenerationRequest one = GenerationRequest.builder().prompt("a lighthouse at dusk").seed(42)
                    .guide(Direction.preset("aesthetics")).build();           // the model's recommended w and layers
            try (GenerationResult r = flux.generate(one)) {
                r.save(out.resolve("guided.png"), Outputs.Existing.REPLACE);  // settings in the PNG: `mmdit generate --from` repeats it
            }
            GenerationRequest batch = GenerationRequest.builder().prompt("a lighthouse at dusk").imagesPerPrompt(2).seed(7)
                    .guide(Direction.preset("aesthetics").w(3).rowWeights(0, 1)).build(); // image 1 guided, image 0 not
            try (GenerationResult r = flux.generate(batch)) {
                r.save(out.resolve("batch"), Outputs.Existing.REPLACE);       // batch/000-seed7.png, batch/001-seed8.png (again on a rerun)
            }
        }
    }
}
