# Runs one libFuzzer target as a test: `cmake -DFUZZER=... -DCORPUS=...
# -DWORK=... -DRUNS=... -P run_fuzzer.cmake`.
#
# The target first runs every input of its corpus in the repository
# (CORPUS: seeds and the inputs of crashes fixed before), then mutates them
# for RUNS inputs in all, with a fixed seed, so that a run is repeatable.
# New inputs go to WORK/corpus (emptied first), never into the repository;
# a crashing input is written to WORK/ and named in the output. Fails when
# the target finds a crash, a leak, a timeout or an out-of-memory.
foreach(var FUZZER CORPUS WORK RUNS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}= is missing")
  endif()
endforeach()
if(NOT EXISTS ${FUZZER})
  message(FATAL_ERROR "${FUZZER} is not built (the main build builds it "
          "through the ExternalProject kpistream_fuzz)")
endif()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus)
execute_process(
  COMMAND ${FUZZER} -seed=1 -runs=${RUNS} -timeout=10 -rss_limit_mb=2048
          -print_final_stats=1 -artifact_prefix=${WORK}/
          ${WORK}/corpus ${CORPUS}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); the input is in ${WORK}/. "
          "Reproduce: ${FUZZER} ${WORK}/<crash-file>")
endif()
