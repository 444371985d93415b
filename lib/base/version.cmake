# Writes the sluice_version library's source (lib/base/version.cpp.in) with the project version and
# the git revision of SOURCE_DIR. Run on every build (cmake -P); configure_file rewrites OUTPUT only
# when its text changes, so an unchanged revision rebuilds nothing.
#
#   cmake -DSOURCE_DIR=... -DINPUT=.../version.cpp.in -DOUTPUT=.../version.cpp
#         -DSLUICE_VERSION=x.y.z [-DSLUICE_REVISION=sha] -P version.cmake
#
# SLUICE_REVISION, when given, is used as it is: for builds from a copy of the sources without
# .git (the Dockerfiles' build stage), which would otherwise say "unknown".
foreach(var SOURCE_DIR INPUT OUTPUT SLUICE_VERSION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "version.cmake: -D${var}= is required")
  endif()
endforeach()

if(NOT SLUICE_REVISION)
  set(SLUICE_REVISION unknown)
  find_program(GIT_EXECUTABLE git)
  if(GIT_EXECUTABLE)
    # Only the sources' own checkout counts, not a repository that happens to contain them.
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} rev-parse --show-toplevel HEAD
                    OUTPUT_VARIABLE out RESULT_VARIABLE rc ERROR_QUIET
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(rc EQUAL 0)
      string(REPLACE "\n" ";" out "${out}")
      list(GET out 0 top)
      list(GET out 1 head)
      get_filename_component(top "${top}" REALPATH)
      get_filename_component(src "${SOURCE_DIR}" REALPATH)
      if(top STREQUAL src AND head MATCHES "^[0-9a-f]+$")
        set(SLUICE_REVISION ${head})
        # Changes to tracked files, staged or not; files git does not track do not count.
        execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} status --porcelain
                                --untracked-files=no
                        OUTPUT_VARIABLE changes RESULT_VARIABLE rc ERROR_QUIET)
        if(NOT rc EQUAL 0 OR NOT changes STREQUAL "")
          string(APPEND SLUICE_REVISION "-dirty")
        endif()
      endif()
    endif()
  endif()
endif()

configure_file(${INPUT} ${OUTPUT} @ONLY)
