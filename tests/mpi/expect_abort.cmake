# Runs COMMAND (a list) with a timeout; passes when it exits non-zero within the time and its
# output holds EXPECT. A hang (timeout) or a zero exit fails.
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
message(STATUS "exit: ${rc}\n${out}${err}")
if(rc STREQUAL "0")
  message(FATAL_ERROR "the job exited with 0; expected the failing rank to abort it")
elseif(NOT rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "the job did not end within 60 s (${rc}): a hang")
endif()
string(FIND "${out}${err}" "${EXPECT}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "the output does not name the failure ('${EXPECT}')")
endif()
