# cmake -DCOMPILER=... -DFLAGS=... -DSNIPPET=... -P first_error.cmake
# Compiles SNIPPET, which must fail, and checks that the FIRST error line matches the regex on the
# snippet's first line ("// expect: REGEX").
file(STRINGS ${SNIPPET} expect LIMIT_COUNT 1 REGEX "^// expect: ")
string(REPLACE "// expect: " "" expect "${expect}")
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
execute_process(COMMAND ${COMPILER} ${flags} -fsyntax-only ${SNIPPET} RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SNIPPET} compiled; it must not")
endif()
string(REGEX MATCH "[^\n]*error: [^\n]*" first "${err}")
if(NOT first MATCHES "${expect}")
  message(FATAL_ERROR "first error does not match '${expect}':\n${first}")
endif()
message(STATUS "first error: ${first}")
