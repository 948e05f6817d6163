package io.mmdit4j.cli;

import io.mmdit4j.golden.CaseResult;
import io.mmdit4j.golden.GoldenRunner;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code mmdit check-golden <case-dir | folder | token_ids.json> ...}: one line per output, non-zero exit on any FAIL. */
@Command(name = "check-golden", mixinStandardHelpOptions = true,
        description = "Run golden reference cases (directories with case.json, folders above them, or token_ids.json) "
                + "and print PASS|FAIL|SKIP <case> <output>: max_abs=... max_rel=... (atol=... rtol=...).")
final class CheckGoldenCommand implements Callable<Integer> {
    @Parameters(arity = "1..*", paramLabel = "PATH", description = "case directories, folders containing cases, or token_ids.json")
    List<Path> paths;

    @Option(names = "--tokenizers", description = "folder with clip/ and t5/ vocabularies for token_ids.json (default: found near the file)")
    Path tokenizers;

    @picocli.CommandLine.Mixin
    ThreadsOption threads = new ThreadsOption();

    @Override
    public Integer call() {
        threads.apply();
        List<CaseResult> results = new GoldenRunner().tokenizers(tokenizers).run(paths, r -> System.out.println(r.line()));
        long pass = results.stream().filter(r -> r.status() == CaseResult.Status.PASS).count();
        long fail = results.stream().filter(r -> r.status() == CaseResult.Status.FAIL).count();
        long skip = results.stream().filter(r -> r.status() == CaseResult.Status.SKIP).count();
        System.out.println("golden: " + pass + " passed, " + fail + " failed, " + skip + " skipped");
        return fail > 0 || results.isEmpty() ? 1 : 0; // a folder without cases is reported as a failure by the runner
    }
}
