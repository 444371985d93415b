# ctest helper: runs `BINARY --version` and fails unless it exits 0 and prints exactly one line
# "NAME VERSION (revision <40 hex digits>[-dirty])" ("unknown" without git) on stdout.
#
#   cmake -DBINARY=path -DNAME=sluice-server -DVERSION=x.y.z -P check_version.cmake
execute_process(COMMAND ${BINARY} --version
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc TIMEOUT 30)
message(STATUS "${BINARY} --version: exit ${rc}\nstdout: ${out}stderr: ${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NAME} --version exited with ${rc}, not 0")
endif()
string(REPLACE "." "\\." version_re "${VERSION}")
if(NOT out MATCHES "^${NAME} ${version_re} \\(revision ([0-9a-f]+(-dirty)?|unknown)\\)\n$")
  message(FATAL_ERROR "${NAME} --version printed \"${out}\", not one line "
                      "\"${NAME} ${VERSION} (revision <sha>[-dirty])\"")
endif()
